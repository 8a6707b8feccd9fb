"""The dataset browser's size and load times (issue 26): a tiny real build beside a synthetic tree.

The tiny build is three disciplines of the `small` shape, built from the loopback server. The synthetic
tree is `whole_dataset.py`'s (records of the dataset's shape, 40 subjects a discipline, no endpoint),
built up to `results/browse/index.html`. For each, the bytes and files of `results/browse/`, its largest
files, and what Debian's Chromium (driven by Selenium, the page opened from disk) takes from being asked
to open the page to showing the tree, then to showing a discipline, a subject's sessions and a pair.

    python browse.py                                   # tiny, and 100,000 records: 50 disciplines of 2,000
    python browse.py --disciplines 10 --records 1000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness import FakeLLM, Workspace, synthetic_taxonomy, workload
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from whole_dataset import write_built_tree

PAGE = "results/browse/index.html"
STEPS = [  # what is clicked, then what must be shown
    ("open the page", None, "#tree details"),
    ("open a discipline", "a.node", "#discipline details.subject"),
    ("open a subject", "#discipline details.subject > summary", "#discipline details.subject[open] details.session"),
    ("open a question", "#discipline details.session:has(a.question) > summary", "#discipline a.question"),
    ("show the pair", "#discipline a.question", "#pair .answer"),
]


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))


def sizes(folder: Path, records: int) -> dict[str, float]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    subject_bytes = sum(p.stat().st_size for p in folder.glob("data/nodes/**/subject-*.js"))
    largest = lambda pattern: max((p.stat().st_size for p in folder.glob(pattern)), default=0)  # noqa: E731
    return {
        "files": len(files),
        "total MB": sum(p.stat().st_size for p in files) / 1e6,
        "data/index.js KB": (folder / "data/index.js").stat().st_size / 1e3,
        "largest node.js KB": largest("data/nodes/**/node.js") / 1e3,
        "largest subject file KB": largest("data/nodes/**/subject-*.js") / 1e3,
        "largest removed file KB": largest("data/removed/**/*.js") / 1e3,
        "subject files, B a record": subject_bytes / max(records, 1),
    }


def load_times(driver: webdriver.Chrome, page: Path, tries: int = 5) -> dict[str, float]:
    """Each step's seconds, the median of `tries` fresh loads of the page."""
    runs: list[list[float]] = []
    for _ in range(tries):
        driver.get("about:blank")
        times = []
        for _, click, shown in STEPS:
            started = time.perf_counter()
            if click is None:
                driver.get(page.as_uri())
            else:
                driver.execute_script("document.querySelector(arguments[0]).click()", click)
            wait = WebDriverWait(driver, 30, poll_frequency=0.005)
            wait.until(lambda d, shown=shown: d.find_elements(By.CSS_SELECTOR, shown))
            times.append(time.perf_counter() - started)
        runs.append(times)
    return {step: sorted(run[n] for run in runs)[len(runs) // 2] for n, (step, _, _) in enumerate(STEPS)}


def tiny() -> tuple[Workspace, str]:
    with FakeLLM() as server:
        workspace = Workspace(synthetic_taxonomy(3), workload(16), server.base_url)
        workspace.snakemake("--cores", "2", PAGE)
    return workspace, "built from the loopback server, 3 disciplines"


def synthetic(disciplines: int, per_node: int) -> tuple[Workspace, str]:
    taxonomy = synthetic_taxonomy(disciplines)
    workspace = Workspace(taxonomy, {"select": [], "llm": {"backend": "openai", "model": "bench", "endpoint": "bench"}})
    write_built_tree(workspace, taxonomy, per_node)
    workspace.snakemake("--rerun-triggers", "mtime", "--cores", "2", PAGE)
    return workspace, f"synthetic, {disciplines * per_node:,} records in {disciplines} disciplines"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--disciplines", type=int, default=50)
    parser.add_argument("--records", type=int, default=2000, help="records per discipline")
    args = parser.parse_args()
    driver = chromium()
    columns = {}
    try:
        for build in (tiny, lambda: synthetic(args.disciplines, args.records)):
            workspace, name = build()
            try:
                records = sum(1 for _ in (workspace.dir / "results/dataset.jsonl").open("rb"))
                page = workspace.dir / PAGE
                columns[name] = {"records": records, **sizes(page.parent, records), **load_times(driver, page)}
            finally:
                workspace.cleanup()
    finally:
        driver.quit()
    names = list(columns)
    print(f"{'':<26}" + "".join(f"{name:>50}" for name in names))
    for row in columns[names[0]]:
        timed = row in dict((step, 0) for step, _, _ in STEPS)
        shape = ",.3f" if timed else ",.0f" if row in ("records", "files") else ",.1f"
        cells = "".join(f"{columns[name][row]:>50{shape}}" for name in names)
        print(f"{row + (' (s)' if timed else ''):<26}{cells}")


if __name__ == "__main__":
    main()
