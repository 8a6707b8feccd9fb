rule answers:
    input:
        upstream="results/nodes/{node}/questions.jsonl",
        prompt="prompts/answers.yaml",
    output:
        artifact="results/nodes/{node}/answers.jsonl",
        rejects="results/nodes/{node}/answers.rejects.jsonl",
    log:
        "logs/{node}/answers.log",
    benchmark:
        "benchmarks/{node}/answers.tsv"
    conda:
        "../envs/glan.yaml"
    resources:
        llm_slots=llm_slots("answers"),
    params:
        settings=stage_settings(config, "answers"),
    script:
        "../scripts/run_stage.py"
