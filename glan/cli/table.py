"""`glan plan` as a table: per node and stage, the requests to send, cached, tokens and cost; then what changed."""

from __future__ import annotations


def format_plan(document: dict, all_nodes: bool = False) -> list[str]:
    """A table per node and stage (nodes with nothing to send are folded unless `all_nodes`), then the changes."""
    lines = []
    width = max([len(i) for i in document["nodes"]] + [20])
    header = f"{'node':<{width}}  {'stage':<9} {'send':>6} {'cached':>7} {'tok in':>9} {'tok out':>9} {'cost':>10}"
    lines += [header, "-" * len(header)]
    idle = 0
    for node_id, node in document["nodes"].items():
        stages = node["stages"]
        if not all_nodes and not any(p["send"] for p in stages.values()):
            idle += 1
            continue
        for index, (stage, plan) in enumerate(stages.items()):
            mark = "~" if plan["estimated"] else " "
            cost = "unpriced" if plan["cost"] is None else f"{plan['cost']:.4f}"
            label = node_id if index == 0 else ""
            lines.append(
                f"{label:<{width}}  {stage:<9} {plan['send']:>5}{mark} {plan['cached']:>7} "
                f"{plan['prompt_tokens']:>9} {plan['reply_tokens']:>9} {cost:>10}"
            )
    if idle:
        lines.append(f"({idle} node(s) with nothing to send not shown; --all shows them)")
    lines.append("-" * len(header))
    for stage, plan in document["totals"].items():
        mark = "~" if plan["estimated"] else " "
        lines.append(
            f"{'total':<{width}}  {stage:<9} {plan['send']:>5}{mark} {plan['cached']:>7} "
            f"{plan['prompt_tokens']:>9} {plan['reply_tokens']:>9} {plan['cost']:>10.4f}"
        )
    lines.append(
        f"A build would send {document['send']} request(s) ({document['estimated']} estimated: marked ~, they depend "
        f"on replies not in the cache yet); estimated cost {document['cost']:.4f} online, "
        f"{document['batch_cost']:.4f} in batch" + unpriced_note(document) + "."
    )
    if document.get("in_batch"):
        lines.append(
            f"{document['in_batch']} more request(s) are in a batch still open (cache/batches/): in flight, "
            "not counted above; a build waits for that batch."
        )
    online, batch = document.get("cost_with_cache"), document.get("batch_cost_with_cache")
    if document.get("cached_share") and online is not None and batch is not None:
        lines.append(
            f"With prefix caching ({document['cached_share']:.1%} of prompt tokens in a prefix already sent, "
            f"at the cached price): {online:.4f} online, {batch:.4f} in batch."
        )
    changed = {i: n["changes"] for i, n in document["nodes"].items() if n["changes"]}
    lines.append("")
    lines.append(f"Changed since the last build: {len(changed)} node(s)" + (":" if changed else ""))
    for node_id, reasons in changed.items():
        lines.append(f"  ~ {node_id}: " + " | ".join(reasons))
    for node_id in document["removed"]:
        lines.append(f"  - {node_id}: no longer in the taxonomy (its results stay on disk, unused)")
    return lines


def unpriced_note(document: dict) -> str:
    """What the costs leave out: models without prices, and models priced online only."""
    online_only = [model for model in document["batch_unpriced"] if model not in document["unpriced"]]
    notes = []
    if document["unpriced"]:
        notes.append(f"unpriced models {document['unpriced']} (add them to `prices`)")
    if online_only:
        notes.append(f"models without batch prices {online_only} (add batch_input_per_mtok and batch_output_per_mtok)")
    return "; leaves out " + " and ".join(notes) if notes else ""
