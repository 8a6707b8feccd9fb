from glan.prompts import Template
from glan.stages import enabled

# The judge (glan/stages/judge.py) runs only when stages.judge.enabled: with it off, nothing
# depends on its rule and the dataset joins the answers, as GLAN's build does.
JUDGE = enabled(config, "judge")
if JUDGE:
    try:
        STAGES["judge"].check(Template("prompts/judge.yaml"))
    except PromptError as error:
        raise WorkflowError(str(error))


rule judge:
    input:
        upstream=node_file(STAGES["judge"].upstream),
        prompt="prompts/judge.yaml",
    output:
        artifact=node_file(STAGES["judge"].output),
        rejects=node_file(STAGES["judge"].rejects),
        sum=node_file(STAGES["judge"].sum),
    log:
        "logs/{node}/judge.log",
        counts="logs/{node}/judge.counts.json",
    benchmark:
        "benchmarks/{node}/judge.tsv"
    conda:
        "../envs/glan.yaml"
    threads: stage_threads("judge")
    resources:
        llm_slots=llm_slots("judge"),
    params:
        settings=stage_settings(config, "judge"),
    script:
        "../scripts/run_stage.py"
