rule answers:
    input:
        upstream=node_file(STAGES["answers"].upstream),
        prompt="prompts/answers.yaml",
    output:
        artifact=node_file(STAGES["answers"].output),
        rejects=node_file(STAGES["answers"].rejects),
        sum=node_file(STAGES["answers"].sum),
    log:
        "logs/{node}/answers.log",
        counts="logs/{node}/answers.counts.json",
    benchmark:
        "benchmarks/{node}/answers.tsv"
    conda:
        "../envs/glan.yaml"
    threads: stage_threads("answers")
    resources:
        llm_slots=llm_slots("answers"),
    params:
        settings=stage_settings(config, "answers"),
    script:
        "../scripts/run_stage.py"
