# Every stage of the registry (glan/stages/), GLAN's four and the judge, is one rule of this shape:
# a discipline's upstream artifact and the stage's template in, its artifact, rejects and sum out.
# With the judge off nothing depends on its rule, and the dataset joins the answers.
for stage in STAGES:

    rule:
        name:
            stage
        input:
            upstream=node_file(STAGES[stage].upstream),
            prompt=f"prompts/{stage}.yaml",
        output:
            artifact=node_file(STAGES[stage].output),
            rejects=node_file(STAGES[stage].rejects),
            sum=node_file(STAGES[stage].sum),
        log:
            f"logs/{{node}}/{stage}.log",
            counts=f"logs/{{node}}/{stage}.counts.json",
        benchmark:
            f"benchmarks/{{node}}/{stage}.tsv"
        conda:
            "../envs/glan.yaml"
        threads: stage_threads(stage)
        resources:
            llm_slots=llm_slots(stage),
        params:
            settings=stage_settings(config, stage),
        script:
            "../scripts/run_stage.py"
