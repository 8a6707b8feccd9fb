"""The config: loaded as Snakemake loads it, and cut into slices: what each stage's jobs depend on
(tracked by Snakemake as params) and what only tunes a run.

Every default lives in config/config.yaml or config/schema.yaml; code reads settings, never invents them.
Standard library only at import: job processes import this module.
"""

from __future__ import annotations

from pathlib import Path

# Keys of `llm` that change replies. The rest (concurrency, timeouts, threads) only tune a run,
# so changing them must not re-run anything.
REPLY_LLM_KEYS = ("backend", "model", "endpoint", "max_attempts", "structured_output")
# Every cache and job made before llm.structured_output existed asked in this mode: in it, requests
# key as they did then (glan.llm.request) and no job re-runs for the new setting.
KEYED_AS_BEFORE = "json_schema"


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


def load_config(directory: str | Path = ".", configfiles: list[str] | tuple[str, ...] = ()) -> dict:
    """The config a `snakemake --configfile ...` run in `directory` would see: defaults, overlays, schema defaults."""
    import yaml
    from snakemake.utils import validate

    from glan.taxonomy import deep_merge

    directory = Path(directory)
    config = yaml.safe_load((directory / "config/config.yaml").read_text(encoding="utf-8"))
    for name in configfiles:
        config = deep_merge(config, yaml.safe_load((directory / name).read_text(encoding="utf-8")) or {})
    validate(config, str((directory / "config/schema.yaml").resolve()))
    return config
