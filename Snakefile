from snakemake.utils import min_version

from glan.config import ConfigError, check_run_config

min_version("9.0")


configfile: "config/config.yaml"


# One line per mistake, naming the file that set the key (Snakemake's validate prints the whole schema),
# after typing nested --config values (llm={preflight: false}) as the schema says.
try:
    check_run_config(
        config,
        workflow.config_settings.configfiles,
        workflow.config_settings.config,
        workflow.source_path("config/schema.yaml"),
    )
except ConfigError as error:
    raise WorkflowError(str(error))


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/stages.smk"
include: "rules/dataset.smk"
include: "rules/taxonomy.smk"
include: "rules/clean.smk"
include: "rules/export.smk"
include: "rules/report.smk"
include: "rules/browse.smk"


rule all:
    input:
        "results/dataset.jsonl",
        rules.export.output,
        rules.plots.output,
        rules.browse.output,
        rules.judge_scores.output if JUDGE else [],
        rules.browse_screenshot.output if SCREENSHOT_BROWSER else [],
