rule syllabus:
    input:
        upstream="results/nodes/{node}/subjects.json",
        prompt="prompts/syllabus.yaml",
    output:
        artifact="results/nodes/{node}/syllabus.json",
        rejects="results/nodes/{node}/syllabus.rejects.jsonl",
    log:
        "logs/{node}/syllabus.log",
    benchmark:
        "benchmarks/{node}/syllabus.tsv"
    conda:
        "../envs/glan.yaml"
    resources:
        llm_slots=llm_slots("syllabus"),
    params:
        settings=stage_settings(config, "syllabus"),
    script:
        "../scripts/run_stage.py"
