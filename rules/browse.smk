# The dataset browser (glan/dataset/browse): results/browse/index.html, opened from disk. One data file per
# discipline from that discipline's artifacts alone, so an edit rebuilds one; the index holds the tree's
# counts and every removed record's reason.
BROWSE_RECORDS = STAGES["judge" if JUDGE else "answers"].output


rule browse_node:
    input:
        node=node_file("node.json"),
        syllabus=node_file(STAGES["syllabus"].output),
        records=node_file(BROWSE_RECORDS),
    output:
        directory("results/browse/data/nodes/{node}"),
    log:
        "logs/{node}/browse.log",
    benchmark:
        "benchmarks/{node}/browse.tsv"
    conda:
        "../envs/glan.yaml"
    script:
        "../scripts/browse.py"


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
    log:
        "logs/browse/index.log",
    benchmark:
        "benchmarks/browse/index.tsv"
    conda:
        "../envs/glan.yaml"
    script:
        "../scripts/browse.py"
