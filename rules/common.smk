from glan.config import stage_settings
from glan.prompts import PromptError
from glan.stages.run import check_prompts
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
