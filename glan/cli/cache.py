"""`glan cache verify [--repair]`: which entries of the reply cache cannot be read, and keeping the rest.

Verify reads every entry: in the files layout each file, in the diskcache layout every page of
cache.db as glan.llm.salvage does, so a file SQLite refuses (cut short, a bad page) is still read.
It names the damaged entries (count, keys, and the stage of those the current build would send
again, from the same walk as `glan plan`). `--repair` puts every readable entry of a damaged cache.db
into a new one and keeps the old file beside it; a damaged file of the files layout needs no
repair, the next reply stored under its key replaces it. Run with no build running.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from glan.config import load_config
from glan.llm.cache import DATABASE, DamagedCache, Entry, cache_layout, open_cache, spill_files
from glan.llm.salvage import Salvage, repair, salvage

SHOWN = 20  # damaged keys listed; the count says how many there are


class Found:
    """A dict of salvaged entries, read as a cache by the plan's walk."""

    def __init__(self, entries: dict[str, Entry]):
        self.entries = entries

    def get(self, key: str) -> Entry | None:
        return self.entries.get(key)


def read_all(cache_dir: Path) -> tuple[Salvage, str | None]:
    """Every readable entry and every key seen; and why SQLite refuses cache.db (None: it reads all of it).

    What SQLite reads is exact; a cache.db it refuses is read page by page."""
    found = Salvage()
    try:
        with open_cache(cache_dir) as cache:
            for key in cache.keys():
                found.keys.add(key)
                entry = cache.get(key)
                if entry is not None:
                    found.entries[key] = entry
    except DamagedCache as error:
        return salvage(str(cache_dir)), error.why
    return found, None


def to_send(directory: Path, configfiles: list[str], found: Salvage) -> str:
    """What a build would send now with only the readable entries, by stage (as `glan plan` counts its exact sends)."""
    from glan.cli.plan import walk

    planned = {missing.key: missing.stage for missing in walk(directory, configfiles, Found(found.entries)).missing}
    counts = Counter(planned.values())
    return ", ".join(f"{stage} {count}" for stage, count in counts.items()) or "nothing"


def verify(directory: str, configfiles: list[str], fix: bool) -> tuple[list[str], int]:
    """The report's lines, and the exit status: 1 where damage is left unrepaired."""
    root = Path(directory)
    config = load_config(root, configfiles)
    cache_dir = root / config["cache_dir"]
    layout = cache_layout(cache_dir)
    if layout is None:
        return [f"{cache_dir}: no cache here yet"], 0
    found, refused = read_all(cache_dir)
    name = cache_dir / DATABASE if layout == "diskcache" else cache_dir
    damaged = found.damaged
    lines = [f"{name}: SQLite cannot read it ({refused}); read page by page instead"] if refused else []
    summary = f"{name}: {len(found.entries):,} entries readable, {len(damaged):,} damaged"
    if refused:
        summary = f"{name}: {len(found.entries):,} entries readable; the others were on pages that are lost"
        summary += f" ({len(damaged):,} of them named below)" if damaged else ""
    waiting = spill_files(str(cache_dir))
    if waiting:
        summary += f"; {len(waiting)} spill file(s) of replies the next build stores first"
    lines.append(summary)
    if not (damaged or refused):
        return lines, 0
    if damaged:
        more = f" and {len(damaged) - SHOWN} more" if len(damaged) > SHOWN else ""
        lines.append(f"  damaged: {' '.join(damaged[:SHOWN])}{more}")
    lines.append(
        f"  with the readable entries alone, a build starts by sending: {to_send(root, configfiles, found)} "
        "(`glan plan` estimates the rest)"
    )
    if layout == "files":
        lines.append("  nothing to repair: a damaged file is replaced by the next reply stored under its key")
        return lines, 0
    if not fix:
        lines.append(
            f"  run `glan cache verify --repair` to keep the {len(found.entries):,} readable entries in a new "
            f"{DATABASE} (the damaged file is kept beside it)"
        )
        return lines, 1
    aside = repair(str(cache_dir), found)
    lines.append(
        f"  repaired: {len(found.entries):,} entries in a new {name}; the damaged file is kept as {aside} "
        "(remove it once a build has run)"
    )
    return lines, 0
