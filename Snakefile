from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/subjects.smk"
include: "rules/syllabus.smk"
include: "rules/questions.smk"
include: "rules/answers.smk"
include: "rules/judge.smk"
include: "rules/dataset.smk"
include: "rules/taxonomy.smk"
include: "rules/clean.smk"
include: "rules/export.smk"
include: "rules/report.smk"


rule all:
    input:
        "results/dataset.jsonl",
        rules.export.output,
        rules.plots.output,
        rules.judge_scores.output if JUDGE else [],
