rule subjects:
    input:
        upstream="results/nodes/{node}/node.json",
        prompt="prompts/subjects.yaml",
    output:
        artifact="results/nodes/{node}/subjects.json",
        rejects="results/nodes/{node}/subjects.rejects.jsonl",
    log:
        "logs/{node}/subjects.log",
    benchmark:
        "benchmarks/{node}/subjects.tsv"
    conda:
        "../envs/glan.yaml"
    resources:
        llm_slots=llm_slots("subjects"),
    params:
        settings=stage_settings(config, "subjects"),
    script:
        "../scripts/run_stage.py"
