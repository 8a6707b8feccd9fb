"""The dataset browser in a real browser: Debian's Chromium, driven by Selenium, opens the built page from
disk (file://, no server, no network), walks the tree down to a pair and finds an answer by a word of it;
and the picture of the page in the Snakemake report."""

from __future__ import annotations

import subprocess
import sys
import urllib.request

import orjson
import pytest
import yaml
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from glan.dataset.browse.screenshot import WINDOW, NoBrowser, find_browser, first_kept
from glan.dataset.composition import Composition, removed_ids


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
    try:
        yield driver
    finally:
        driver.quit()


def shown(driver, selector: str):
    return WebDriverWait(driver, 10).until(lambda d: d.find_element(By.CSS_SELECTOR, selector))


def test_a_pair_opened_from_the_tree_is_the_datasets_record_and_search_finds_an_answer(browser, first_build, tmp_path):
    lines = (first_build.dir / "results/dataset.jsonl").read_bytes().splitlines()
    records = {record["id"]: record for record in map(orjson.loads, lines)}
    browser.get((first_build.dir / "results/browse/index.html").as_uri())

    shown(browser, "#tree details[data-name='Natural Sciences'] > summary").click()
    shown(browser, "details[data-name='Physics'] > summary").click()
    shown(browser, "a[data-node='natural-sciences/physics/optics']").click()
    shown(browser, "#discipline details.subject > summary").click()  # its records load as it opens
    shown(browser, "#discipline details.subject[open] details.session:has(a.question) > summary").click()
    question = shown(browser, "#discipline details.session[open] a.question")
    record_id = question.get_attribute("data-record")
    question.click()
    answer = shown(browser, "#pair .answer")

    record = records[record_id]
    assert record["provenance"]["node"] == "natural-sciences/physics/optics"
    assert browser.find_element(By.CSS_SELECTOR, "#pair .asked").text == record["messages"][0]["content"]
    assert answer.text == record["messages"][1]["content"]
    assert f"record={record_id}" in browser.current_url  # the link that opens this pair again

    browser.get(browser.current_url)  # a shared link opens the same pair
    assert shown(browser, "#pair .asked").text == record["messages"][0]["content"]

    subject = [r for r in records.values() if r["provenance"]["subject"] == record["provenance"]["subject"]]
    other = next(r for r in subject if r["id"] != record_id)  # search looks in the subjects opened
    word = other["messages"][1]["content"].split()[1]  # the fake model's reply carries a unique hex word
    search = browser.find_element(By.ID, "search")
    search.send_keys(word)
    found = WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#discipline a.question"))
    assert [link.get_attribute("data-record") for link in found] == [other["id"]]
    browser.save_screenshot(str(tmp_path / "browse.png"))


@pytest.mark.built
def test_a_removed_record_opened_by_its_link_says_why_and_the_removed_filter_lists_it(workflow, browser):
    records = [orjson.loads(line) for line in workflow.dataset().splitlines()]
    record = next(r for r in records if r["provenance"]["node"] == "natural-sciences/physics/optics")
    question = record["messages"][0]["content"]
    workflow.path("benchmark.jsonl").write_bytes(orjson.dumps({"text": question}) + b"\n")
    benchmarks = [{"name": "bench", "path": "benchmark.jsonl", "field": "text"}]
    workflow.overlay["clean"] = {"decontaminate": {"benchmarks": benchmarks, "ngram": 2, "min_words": 1}}
    workflow.run()
    syllabus = yaml.safe_load(workflow.path("results/nodes/natural-sciences/physics/optics/syllabus.json").read_text())
    subject = [s["name"] for s in syllabus["subjects"]].index(record["provenance"]["subject"])

    link = f"#node=natural-sciences%2Fphysics%2Foptics&subject={subject}&record={record['id']}"
    browser.get(workflow.path("results/browse/index.html").as_uri() + link)
    assert shown(browser, "#pair .asked").text == question
    assert "Removed: contaminated by benchmark bench" in shown(browser, "#pair .reason").text

    Select(browser.find_element(By.ID, "status")).select_by_value("removed")
    found = WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#discipline a.question"))
    assert [link.get_attribute("data-record") for link in found] == [record["id"]]
    # why is the discipline's own file, loaded with it: the index holds counts only, however big the dataset
    assert (
        record["id"].encode()
        in workflow.path("results/browse/data/removed/natural-sciences/physics/optics.js").read_bytes()
    )
    assert record["id"].encode() not in workflow.path("results/browse/data/index.js").read_bytes()


def test_the_reports_picture_is_the_page_opened_at_the_first_kept_record(first_build, browser):
    picture = (first_build.dir / "results/report/browser.png").read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n"
    assert (int.from_bytes(picture[16:20], "big"), int.from_bytes(picture[20:24], "big")) == WINDOW

    removed = removed_ids(sorted((first_build.dir / "results/clean").glob("*.jsonl")))  # the removal files
    raw = [orjson.loads(line) for line in (first_build.dir / "results/dataset.jsonl").read_bytes().splitlines()]
    first = next(record for record in raw if record["id"] not in removed)
    order = list(dict.fromkeys(record["provenance"]["node"] for record in raw))  # taxonomy order
    folders = [first_build.dir / "results/nodes" / node for node in order]
    clean = Composition([f / "facts.parquet" for f in folders], [f / "answers.jsonl" for f in folders], removed)
    link = first_kept(clean)
    browser.get("about:blank")  # a fresh page: the same page at another link would keep an earlier search
    browser.get((first_build.dir / "results/browse/index.html").as_uri() + link)
    assert shown(browser, "#pair .asked").text == first["messages"][0]["content"]
    node = shown(browser, "#tree a.node.current")  # the tree opened down to the record's discipline
    assert node.is_displayed() and node.get_attribute("data-node") == first["provenance"]["node"]
    question = shown(browser, "#discipline details.session[open] a.question.current")
    assert question.is_displayed() and question.get_attribute("data-record") == first["id"]


def test_report_screenshot_auto_takes_a_browser_where_there_is_one_true_requires_one(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_browser("auto") is None and find_browser(False) is None
    with pytest.raises(NoBrowser, match="report.screenshot is true but none of chromium, .* is on PATH"):
        find_browser(True)
    (tmp_path / "chromium").write_text("#!/bin/sh\n")
    (tmp_path / "chromium").chmod(0o755)
    assert find_browser("auto") == find_browser(True) == str(tmp_path / "chromium")
    assert find_browser(False) is None


def test_glan_browse_prints_the_page_and_serves_it_on_loopback(first_build):
    command = [sys.executable, "-m", "glan.cli", "browse", "-d", str(first_build.dir)]
    page = first_build.dir / "results/browse/index.html"
    said = subprocess.run(command, capture_output=True, text=True, check=True)
    assert said.stdout.strip() == str(page.resolve())
    with subprocess.Popen([*command, "--serve"], stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout.readline().strip() == str(page.resolve())
            url = server.stdout.readline().split()[2]
            assert url.startswith("http://127.0.0.1:")
            with urllib.request.urlopen(url, timeout=10) as reply:
                assert reply.read() == page.read_bytes()
        finally:
            server.terminate()
    missing = subprocess.run([*command[:-1], str(first_build.dir / "nowhere")], capture_output=True, text=True)
    assert missing.returncode == 1
    assert "is not built yet: run `snakemake --cores 2 results/browse/index.html`" in missing.stdout
