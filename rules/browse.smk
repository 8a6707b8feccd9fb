# The dataset browser (glan/dataset/browse): results/browse/index.html, opened from disk. One data file per
# discipline from that discipline's artifacts alone, so an edit rebuilds one; the index holds the tree's
# counts, and data/removed one file per discipline with why its records were removed (dedup compares across
# disciplines, so these come from the whole dataset's cleaning).
from glan.dataset.browse.screenshot import NoBrowser, find_browser

try:  # the browser that pictures the page for the report, where report.screenshot asks for one
    SCREENSHOT_BROWSER = find_browser(config["report"]["screenshot"])
except NoBrowser as error:
    raise WorkflowError(str(error))


rule browse_node:
    input:
        node=node_file("node.json"),
        syllabus=node_file(STAGES["syllabus"].output),
        records=node_file(RECORDS),
    output:
        directory("results/browse/data/nodes/{node}"),
    log:
        "logs/{node}/browse.log",
    benchmark:
        "benchmarks/{node}/browse.tsv"
    conda:
        "../envs/glan.yaml"
    script:
        "../scripts/step.py"


rule browse:
    input:
        nodes=expand(rules.browse_node.output, node=NODES),
        syllabi=expand(node_file(STAGES["syllabus"].output), node=NODES),
        questions=expand(node_file(STAGES["questions"].output), node=NODES),
        removed=REMOVALS,
        accounting="results/report/accounting.json",
    output:
        page="results/browse/index.html",
        index="results/browse/data/index.js",
        removed=directory("results/browse/data/removed"),
    log:
        "logs/browse/index.log",
    benchmark:
        "benchmarks/browse/index.tsv"
    run:
        step("browse", input, output, params, log, wildcards)


# The browser was found on the host that runs Snakemake (report.screenshot), so the picture is taken there.
localrules:
    browse_screenshot,


rule browse_screenshot:
    input:
        page=rules.browse.output.page,
        index=rules.browse.output.index,
        removed=rules.browse.output.removed,
        nodes=rules.browse.input.nodes,
        # the clean dataset's first record, where the picture opens the page
        facts=FACTS,
        records=NODE_RECORDS,
        removals=REMOVALS,
    output:
        report(
            "results/report/browser.png",
            caption="../report/browser.rst",
            category="5. Browser",
            labels={"plot": "The dataset browser"},
        ),
    log:
        "logs/report/browser.log",
    benchmark:
        "benchmarks/report/browser.tsv"
    params:
        browser=SCREENSHOT_BROWSER,
    run:
        step("browse_screenshot", input, output, params, log, wildcards)
