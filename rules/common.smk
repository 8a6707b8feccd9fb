from glan.config import stage_settings
from glan.prompts import PromptError
from glan.stages.run import check_prompts, planned_requests
from glan.taxonomy import TaxonomyError, load_taxonomy, select, write_node_files

# One file per discipline, rewritten only when its own content changes: each node's jobs
# depend on that file alone, never on taxonomy.yaml, so editing one node re-runs one node.
try:
    check_prompts("prompts")
    NODES = select(
        write_node_files(load_taxonomy(config["taxonomy"]), "results/nodes"),
        config["select"],
    )
except (TaxonomyError, PromptError) as error:
    raise WorkflowError(str(error))


# One cap on LLM requests in flight for the whole run, whatever runs at once (--cores, a cluster):
# each stage job takes as many `llm_slots` as it has requests, at most the cap, and sends that many
# at a time. `--resources llm_slots=N` on the command line or in a profile overrides the config.
if "llm_slots" not in workflow.global_resources:
    workflow.register_resource("llm_slots", config["llm"]["concurrency"])


def llm_slots(stage):
    cap = config["llm"]["concurrency"]
    settings = stage_settings(config, stage)

    def slots(wildcards, input):
        return max(
            1, min(cap, planned_requests(stage, input.upstream, input.prompt, settings))
        )

    return slots
