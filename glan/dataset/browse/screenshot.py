"""A picture of the dataset browser for the Snakemake report, taken by a headless Chromium (or Chrome).

The page is opened from disk at one kept record (the clean dataset's first), so the picture shows the
tree opened down to its discipline, the discipline's subjects and that question and answer. The browser
runs with a profile of its own in a temporary folder, so two runs never share one.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlencode

from glan.dataset.composition import Composition
from glan.io import read_json
from glan.stages import STAGES

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
WINDOW = (1400, 1000)
SETTLE_MS = 10_000  # virtual time the page gets to load its data files and draw


class NoBrowser(Exception):
    pass


def find_browser(wanted: bool | str) -> str | None:
    """The browser that takes the picture: report.screenshot `auto` takes one if the host has one, `true`
    requires one, `false` takes none."""
    if wanted is False:
        return None
    found = next(filter(None, map(shutil.which, BROWSERS)), None)
    if found is None and wanted is True:
        raise NoBrowser(
            f"report.screenshot is true but none of {', '.join(BROWSERS)} is on PATH: install one "
            "(Debian: apt install chromium) or set report.screenshot to auto, which leaves the picture out"
        )
    return found


def first_kept(clean: Composition) -> str:
    """The page's link (`#node=...&subject=...&record=...`) to the clean dataset's first record."""
    parts = clean.parts()  # held: its records file stays open while the generator lives
    part = next((part for part in parts if len(part)), None)
    if part is None:
        return ""
    record = part.record(0)
    provenance = record["provenance"]
    folder = Path(clean.records[part.node.number]).parent  # the discipline's files, its syllabus among them
    subjects = read_json(folder / STAGES["syllabus"].output)["subjects"]
    subject = next(n for n, s in enumerate(subjects) if s["name"] == provenance["subject"])
    return "#" + urlencode({"node": provenance["node"], "subject": subject, "record": record["id"]})


def take(browser: str, page: Path, link: str, picture: Path, log: Path) -> None:
    partial = picture.with_name(f".{picture.stem}.partial{picture.suffix}")  # chromium writes by suffix
    with tempfile.TemporaryDirectory(prefix="glan-browser-") as profile, log.open("ab") as output:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",  # a page we built, from disk; the sandbox refuses to start as root
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={WINDOW[0]},{WINDOW[1]}",
                f"--virtual-time-budget={SETTLE_MS}",
                f"--screenshot={partial.resolve()}",
                page.resolve().as_uri() + link,
            ],
            stdout=output,
            stderr=output,
            timeout=120,
            check=True,
        )
    partial.replace(picture)
