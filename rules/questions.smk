rule questions:
    input:
        upstream=node_file(STAGES["questions"].upstream),
        prompt="prompts/questions.yaml",
    output:
        artifact=node_file(STAGES["questions"].output),
        rejects=node_file(STAGES["questions"].rejects),
        sum=node_file(STAGES["questions"].sum),
    log:
        "logs/{node}/questions.log",
        counts="logs/{node}/questions.counts.json",
    benchmark:
        "benchmarks/{node}/questions.tsv"
    conda:
        "../envs/glan.yaml"
    threads: stage_threads("questions")
    resources:
        llm_slots=llm_slots("questions"),
    params:
        settings=stage_settings(config, "questions"),
    script:
        "../scripts/run_stage.py"
