"""Everything that needs llama.cpp: importing it, loading the model, grammars, sampling and stopping.

llama-cpp-python is imported only when a local backend is made, so a run on another backend never
needs it, and a missing install fails with the command that fixes it. Loading: one model per process
and load options, shared by every backend instance.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from glan.llm.backends.local.errors import INSTALL_HINT, LocalBackendError
from glan.llm.backends.local.prompt import paragraph_end


def import_llama_cpp() -> ModuleType:
    try:
        import llama_cpp
    except ImportError as exc:
        raise LocalBackendError(
            f"llm.backend is `local` but llama-cpp-python cannot be imported ({exc}). Install it with: "
            f"{INSTALL_HINT} (this compiles llama.cpp: a few minutes on 2 cores); or set llm.backend: openai."
        ) from exc
    return llama_cpp


class _GrammarFirstSampler:
    """Grammar-constrained sampling that asks the grammar about the chosen token, not the whole vocabulary.

    llama-cpp-python applies the grammar to all 262k candidates of Gemma's vocabulary at every step
    (about 70 ms a token on these machines, three times the model's own cost). This samples as if
    there were no grammar, checks the one token drawn, and only when the grammar rejects it draws
    again under the grammar: the approach of llama.cpp's own `common_sampler`.
    """

    def __init__(self, llama, grammar, tail, repeat_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0):
        import numpy as np

        self.np = np
        self.low = low = import_llama_cpp().llama_cpp
        self.n_vocab = llama.n_vocab()
        self.tail = tail  # truncation, temperature and the seeded draw, as llama-cpp-python chains them
        self.penalties = low.llama_sampler_init_penalties(
            self.n_vocab, llama.last_n_tokens_size, repeat_penalty, frequency_penalty, presence_penalty
        )
        self.grammar = low.llama_sampler_init_grammar(
            llama._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self.grammar:
            raise ValueError("llama.cpp rejected the grammar built from the request's schema")
        token_data = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)], align=True)
        self.buffer = np.zeros(self.n_vocab, dtype=token_data)
        self.ids = np.arange(self.n_vocab, dtype=np.int32)
        self.one = (low.llama_token_data * 1)()

    def _candidates(self, logits):
        self.buffer["id"] = self.ids
        self.buffer["logit"] = logits
        self.buffer["p"] = 0.0
        data = self.buffer.ctypes.data_as(self.low.llama_token_data_p)
        return self.low.llama_token_data_array(data=data, size=self.n_vocab, selected=-1, sorted=False)

    def _draw(self, logits, constrained: bool) -> int:
        array = self._candidates(logits)
        self.low.llama_sampler_apply(self.penalties, ctypes.byref(array))
        if constrained:
            self.low.llama_sampler_apply(self.grammar, ctypes.byref(array))
        self.low.llama_sampler_apply(self.tail.sampler, ctypes.byref(array))
        return int(array.data[array.selected].id)

    def _allowed(self, token: int) -> bool:
        self.one[0].id, self.one[0].logit, self.one[0].p = token, 0.0, 0.0
        array = self.low.llama_token_data_array(data=self.one, size=1, selected=-1, sorted=False)
        self.low.llama_sampler_apply(self.grammar, ctypes.byref(array))
        return self.one[0].logit != float("-inf")

    def sample(self, ctx, idx: int = -1) -> int:
        pointer = self.low.llama_get_logits_ith(ctx.ctx, idx)
        logits = self.np.ctypeslib.as_array(pointer, shape=(self.n_vocab,))
        token = self._draw(logits, constrained=False)
        if not self._allowed(token):
            token = self._draw(logits, constrained=True)
        for sampler in (self.penalties, self.grammar, self.tail.sampler):
            self.low.llama_sampler_accept(sampler, token)
        return token

    def __del__(self):
        for name in ("penalties", "grammar"):
            sampler = getattr(self, name, None)
            if sampler:
                self.low.llama_sampler_free(sampler)


def _llama_class(llama_cpp: ModuleType) -> type:
    """llama_cpp.Llama, with grammars checked per drawn token (see `_GrammarFirstSampler`)."""
    base: Any = llama_cpp.Llama  # a class known only at run time: mypy takes it as Any

    class Llama(base):
        def _init_sampler(self, *args, grammar=None, **kwargs):
            if grammar is None or args or kwargs.get("logits_processor") or kwargs.get("mirostat_mode"):
                return super()._init_sampler(*args, grammar=grammar, **kwargs)
            penalties = {
                k: kwargs.pop(k) for k in ("repeat_penalty", "frequency_penalty", "presence_penalty") if k in kwargs
            }
            return _GrammarFirstSampler(self, grammar, super()._init_sampler(**kwargs), **penalties)

    return Llama


@contextlib.contextmanager
def model_params(llama_cpp: ModuleType, extra_buffers: bool):
    """Sets llama.cpp's `use_extra_bufts` (weight repacking, AMX) while a model loads: llama-cpp-python has
    no argument for it. Off by default, because its AMX kernels crash (SIGSEGV in `ldtilecfg`) on VMs
    whose CPU flags advertise AMX, as on these machines; the plain CPU kernels lose little on a 270M model.
    """
    low = llama_cpp.llama_cpp
    original = low.llama_model_default_params

    def patched():
        params = original()
        params.use_extra_bufts = extra_buffers
        return params

    low.llama_model_default_params = patched
    try:
        yield
    finally:
        low.llama_model_default_params = original


_MODELS: dict[tuple, tuple[object, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


def load_model(path: str | os.PathLike, options: dict):
    """The process's model for this file and these options, and the lock that serialises its calls."""
    path = Path(path).resolve()
    key = (str(path), options["n_ctx"], options["n_threads"], options["n_batch"], bool(options["extra_buffers"]))
    with _MODELS_LOCK:
        if key not in _MODELS:
            llama_cpp = import_llama_cpp()
            try:
                with model_params(llama_cpp, bool(options["extra_buffers"])):
                    model = _llama_class(llama_cpp)(
                        model_path=str(path),
                        n_ctx=options["n_ctx"],
                        n_batch=options["n_batch"],
                        n_threads=options["n_threads"],
                        n_threads_batch=options["n_threads"],
                        swa_full=False,  # every request starts afresh, so the sliding window needs no full cache
                        verbose=False,
                    )
            except Exception as exc:
                raise LocalBackendError(
                    f"llama.cpp cannot load the local model {path}: {exc}. Is it a GGUF file? Delete it to have "
                    f"it written again from the model package ({INSTALL_HINT})."
                ) from exc
            _MODELS[key] = (model, threading.Lock())
        return _MODELS[key]


def compile_grammar(grammar: str):
    """A GBNF grammar, compiled by llama.cpp for `create_completion`."""
    return import_llama_cpp().LlamaGrammar.from_string(grammar, verbose=False)


def json_grammar(schema: dict) -> str:
    """llama.cpp's own JSON-schema grammar, for schemas the outline does not cover."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(json.dumps(schema))


def paragraph_stop(model):
    """llama-cpp-python's stopping criteria: stop once the reply so far has a `paragraph_end`."""
    prompt_length: list[int] = []

    def stop(input_ids, logits) -> bool:
        if not prompt_length:
            prompt_length.append(len(input_ids))  # first call: the prompt, nothing generated yet
        text = model.detokenize(list(input_ids[prompt_length[0] :])).decode("utf-8", errors="ignore")
        return paragraph_end(text) is not None

    return import_llama_cpp().StoppingCriteriaList([stop])
