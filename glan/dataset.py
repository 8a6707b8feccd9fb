"""The dataset: every discipline's answer records, in taxonomy order, as one chat-format JSONL file."""

from __future__ import annotations

from pathlib import Path

from glan.io import write_bytes_atomic


def concatenate(answer_files: list[str], output: str | Path) -> int:
    """Answer files already hold finished records, one per line; joining them is all that is left."""
    chunks = [Path(path).read_bytes() for path in answer_files]
    write_bytes_atomic(output, b"".join(chunks))
    return sum(chunk.count(b"\n") for chunk in chunks)
