"""The config: loaded as Snakemake loads it, and cut into slices: what each stage's jobs depend on
(tracked by Snakemake as params) and what only tunes a run.

Every default lives in config/config.yaml or config/schema.yaml; code reads settings, never invents them.
Standard library only at import: job processes import this module.
"""

from __future__ import annotations

import os
from pathlib import Path

# Keys of `llm` that change replies. The rest (concurrency, timeouts, threads) only tune a run,
# so changing them must not re-run anything.
REPLY_LLM_KEYS = ("backend", "model", "endpoint", "max_attempts", "structured_output")
# Every cache and job made before llm.structured_output existed asked in this mode: in it, requests
# key as they did then (glan.llm.request) and no job re-runs for the new setting.
KEYED_AS_BEFORE = "json_schema"


def deep_merge(base: dict, override: dict) -> dict:
    """`override` on top of `base`, mapping by mapping, as Snakemake merges config files."""
    merged = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = deep_merge(merged[key], value) if both else value
    return merged


def stage_llm(config: dict, stage: str) -> dict:
    """The stage's full llm settings: the global `llm` mapping with the stage's own `llm` keys on top."""
    return {**config["llm"], **config["stages"][stage].get("llm", {})}


def stage_settings(config: dict, stage: str) -> dict:
    """The narrow slice a stage's outputs depend on; passed to rules as params so edits re-run only that stage.

    Keys are sorted so that reordering the config file changes nothing Snakemake compares.
    """
    llm = stage_llm(config, stage)
    own = {k: v for k, v in config["stages"][stage].items() if k != "llm"}
    replies = {k: llm[k] for k in REPLY_LLM_KEYS if k in llm}
    if replies.get("structured_output") == KEYED_AS_BEFORE:
        del replies["structured_output"]
    return _sorted_deep({"llm": replies, "seed": config["seed"], **own})


def config_slice(config: dict, *path: str):
    """A nested config section with sorted keys, for params: reordering the config file re-runs nothing."""
    value = config
    for key in path:
        value = value[key]
    return _sorted_deep(value)


def _sorted_deep(value):
    if isinstance(value, dict):
        return {k: _sorted_deep(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_deep(v) for v in value]
    return value


class ConfigError(ValueError):
    """A config mistake, in one line: the file that set the key, the key's path and what to change."""


SCHEMA = "config/schema.yaml"
BASE = "config/config.yaml"
COMMAND_LINE = "--config"


def load_config(directory: str | Path = ".", configfiles: list[str] | tuple[str, ...] = ()) -> dict:
    """The config a `snakemake --configfile ...` run in `directory` would see: the defaults, then the overlays."""
    import yaml

    directory = Path(directory)
    layers = []
    for name in (BASE, *configfiles):
        try:
            layers.append((name, yaml.safe_load((directory / name).read_text(encoding="utf-8")) or {}))
        except OSError as error:
            raise ConfigError(f"{name}: cannot read this config file: {error.strerror}") from error
        except yaml.YAMLError as error:
            raise ConfigError(f"{name}: not valid YAML: {' '.join(str(error).split())}") from error
    config: dict = {}
    for _, layer in layers:
        config = deep_merge(config, layer)
    check_config(config, directory / SCHEMA, layers)
    return config


def check_run_config(config: dict, configfiles: list, given: dict, schema_path: str | Path) -> None:
    """The Snakefile's check of its `config`: `--config` values typed as the schema says (in place), then
    `check_config` with the layers a run merged: the defaults, each --configfile, the --config values.
    Paths are as Snakemake takes them: config files from the working directory."""
    import yaml

    typed = command_line_values(dict(given), schema_path)
    merged = deep_merge(config, typed)
    config.clear()
    config.update(merged)
    layers = [(BASE, yaml.safe_load(Path(BASE).read_text(encoding="utf-8")) or {})]
    for path in map(Path, configfiles):
        shown = os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
        layers.append((shown, yaml.safe_load(path.read_text(encoding="utf-8")) or {}))
    check_config(config, schema_path, [*layers, (COMMAND_LINE, typed)])


def check_config(config: dict, schema_path: str | Path, layers: list[tuple[str, dict]]) -> None:
    """Check `config` against the schema; its first mistake as a ConfigError naming the layer that set it.

    `layers` are the (name, mapping) pairs merged into `config`, first to last: the defaults, each
    --configfile, the --config values. Snakemake's own `validate` prints the whole schema and config.
    """
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_one_line(error, schema, layers))


def command_line_values(given: dict, schema_path: str | Path) -> dict:
    """`--config` values as their schema types: Snakemake reads a nested value (`llm={preflight: false}`)
    as text, so the key's type in the schema (boolean, integer, number, null) decides what it means."""
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))

    def typed(value, at: dict):
        if isinstance(value, dict):
            return {key: typed(item, _property(schema, at, key)) for key, item in value.items()}
        if isinstance(value, str) and "string" not in _types(schema, at):
            try:
                return yaml.safe_load(value)
            except yaml.YAMLError:
                return value
        return value

    return typed(given, schema)


def _resolve(schema: dict, at: dict) -> dict:
    while "$ref" in at:
        at = schema["$defs"][at["$ref"].rsplit("/", 1)[1]]
    return at


def _property(schema: dict, at: dict, key: str) -> dict:
    at = _resolve(schema, at)
    known = at.get("properties", {})
    extra = at.get("additionalProperties")
    return known.get(key, extra if isinstance(extra, dict) else {})


def _types(schema: dict, at: dict) -> set[str]:
    """The JSON types a schema takes (any: every one)."""
    at = _resolve(schema, at)
    if "oneOf" in at:
        return set().union(*(_types(schema, form) for form in at["oneOf"]))
    given = at.get("type", ["string", "object"])
    return {given} if isinstance(given, str) else set(given)


def _one_line(error, schema: dict, layers: list[tuple[str, dict]]) -> str:
    import difflib

    path = list(error.absolute_path)
    if error.validator == "additionalProperties":
        known = sorted(_resolve(schema, error.schema).get("properties", {}))
        unknown = sorted(set(error.instance) - set(known))[0]
        near = difflib.get_close_matches(unknown, known, n=1)
        hint = f"did you mean `{_dotted([*path, near[0]])}`?" if near else f"the keys here: {', '.join(known)}"
        return f"{_setter(layers, [*path, unknown])}: unknown config key `{_dotted([*path, unknown])}`; {hint}"
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        return f"{_setter(layers, path)}: the config has no `{_dotted([*path, missing])}`, which is required; add it"
    forms = error
    while forms is not None and forms.validator != "oneOf":
        forms = forms.parent
    if forms is not None:
        at = list(forms.absolute_path)
        inner = "" if error is forms else f" (`{_dotted(path)}` {_what(error)})"
        return (
            f"{_setter(layers, path)}: `{_dotted(at)}: {_short(forms.instance)}` is none of the forms it takes"
            f"{inner}: {_resolve(schema, forms.schema).get('description', '')}"
        )
    return f"{_setter(layers, path)}: `{_dotted(path)}: {_short(error.instance)}` {_what(error)}"


def _dotted(path: list) -> str:
    return ".".join(map(str, path))


JSON_TYPES = {
    "array": "a list",
    "object": "a mapping",
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


def _what(error) -> str:
    rule = error.validator_value
    described = {
        "type": lambda: "must be " + " or ".join(JSON_TYPES[t] for t in ([rule] if isinstance(rule, str) else rule)),
        "enum": lambda: f"must be one of {', '.join(map(str, rule))}",
        "minimum": lambda: f"must be at least {rule}",
        "maximum": lambda: f"must be at most {rule}",
        "exclusiveMinimum": lambda: f"must be more than {rule}",
        "exclusiveMaximum": lambda: f"must be less than {rule}",
        "minLength": lambda: "must not be empty" if rule == 1 else f"must be at least {rule} characters",
        "minItems": lambda: f"must have at least {rule} item(s)",
    }
    if error.validator in described:
        return described[error.validator]()
    meaning = error.schema.get("description")
    return f"is not valid: {error.message[:200]}" + (f" ({meaning})" if meaning else "")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _setter(layers: list[tuple[str, dict]], path: list) -> str:
    """The last layer that sets `path` (or the nearest key above it that one sets): where to fix it.
    A key no layer sets belongs in the defaults."""
    for depth in range(len(path), 0, -1):
        for name, layer in reversed(layers):
            value = layer
            for key in path[:depth]:
                if not isinstance(value, dict) or key not in value:
                    break
                value = value[key]
            else:
                return name
    return layers[0][0]
