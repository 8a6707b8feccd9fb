rule syllabus:
    input:
        upstream=node_file(STAGES["syllabus"].upstream),
        prompt="prompts/syllabus.yaml",
    output:
        artifact=node_file(STAGES["syllabus"].output),
        rejects=node_file(STAGES["syllabus"].rejects),
        sum=node_file(STAGES["syllabus"].sum),
    log:
        "logs/{node}/syllabus.log",
        counts="logs/{node}/syllabus.counts.json",
    benchmark:
        "benchmarks/{node}/syllabus.tsv"
    conda:
        "../envs/glan.yaml"
    threads: stage_threads("syllabus")
    resources:
        llm_slots=llm_slots("syllabus"),
    params:
        settings=stage_settings(config, "syllabus"),
    script:
        "../scripts/run_stage.py"
