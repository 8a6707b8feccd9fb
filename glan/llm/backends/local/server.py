"""llama-cpp-python's OpenAI-compatible server, with the model loaded as the embedded backend loads it:
llama.cpp's extra buffer types (weight repacking, AMX kernels) off. Takes `llama_cpp.server`'s arguments:

    python -m glan.llm.backends.local.server --model model.gguf --model_alias NAME --port 8000

On a VM whose CPU flags advertise AMX (`grep -o 'amx[a-z_0-9]*' /proc/cpuinfo` prints `amx_tile`...),
`python -m llama_cpp.server` (0.3.36) crashes with SIGSEGV on its first chat completion; started this way
it does not. It says so on stderr, read back from the defaults every model it loads starts from.
"""

from __future__ import annotations

import sys

from glan.llm.backends.local.runner import import_llama_cpp, model_params

SERVER_HINT = "pip install 'llama-cpp-python[server]'"


def main() -> None:
    llama_cpp = import_llama_cpp()
    try:
        from llama_cpp.server.__main__ import main as serve
    except ImportError as exc:
        sys.exit(f"llama-cpp-python's server cannot be imported ({exc}). Install it with: {SERVER_HINT}")
    with model_params(llama_cpp, extra_buffers=False):  # for the whole run: the server may load models later
        extra = llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts
        print(f"glan: llama.cpp extra buffer types (use_extra_bufts) {'on' if extra else 'off'}", file=sys.stderr)
        serve()


if __name__ == "__main__":
    main()
