rule questions:
    input:
        upstream="results/nodes/{node}/syllabus.json",
        prompt="prompts/questions.yaml",
    output:
        artifact="results/nodes/{node}/questions.jsonl",
        rejects="results/nodes/{node}/questions.rejects.jsonl",
    log:
        "logs/{node}/questions.log",
    benchmark:
        "benchmarks/{node}/questions.tsv"
    conda:
        "../envs/glan.yaml"
    resources:
        llm_slots=llm_slots("questions"),
    params:
        settings=stage_settings(config, "questions"),
    script:
        "../scripts/run_stage.py"
