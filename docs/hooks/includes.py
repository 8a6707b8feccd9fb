"""Pages whose text lives elsewhere in the repository, so that it is written once: the home page is the
README (its `docs/` links made relative to the site), the benchmarks page is bench/README.md."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INCLUDES = {"<!-- README.md -->": "README.md", "<!-- bench/README.md -->": "bench/README.md"}


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, source in INCLUDES.items():
        if marker in markdown:
            text = (ROOT / source).read_text().replace("](docs/", "](")
            markdown = markdown.replace(marker, text)
    return markdown
