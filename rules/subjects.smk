rule subjects:
    input:
        upstream=node_file(STAGES["subjects"].upstream),
        prompt="prompts/subjects.yaml",
    output:
        artifact=node_file(STAGES["subjects"].output),
        rejects=node_file(STAGES["subjects"].rejects),
        sum=node_file(STAGES["subjects"].sum),
    log:
        "logs/{node}/subjects.log",
        counts="logs/{node}/subjects.counts.json",
    benchmark:
        "benchmarks/{node}/subjects.tsv"
    conda:
        "../envs/glan.yaml"
    threads: stage_threads("subjects")
    resources:
        llm_slots=llm_slots("subjects"),
    params:
        settings=stage_settings(config, "subjects"),
    script:
        "../scripts/run_stage.py"
