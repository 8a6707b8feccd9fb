rule syllabus:
    input:
        upstream="results/nodes/{node}/subjects.json",
        prompt="prompts/syllabus.yaml",
    output:
        "results/nodes/{node}/syllabus.json",
    log:
        "logs/{node}/syllabus.log",
    benchmark:
        "benchmarks/{node}/syllabus.tsv"
    conda:
        "../envs/glan.yaml"
    params:
        settings=stage_settings(config, "syllabus"),
    script:
        "../scripts/run_stage.py"
