"""`glan`: the taxonomy commands next to the Snakemake build.

    glan plan      what a build would send (per node and stage), its tokens and cost, and what changed
    glan inspect   the taxonomy as a tree with built counts per node; validates it
    glan review    accept or reject proposed nodes (results/taxonomy/proposed.yaml) into taxonomy.yaml
    glan batch     export the requests a build would send as a Batch API input file; import its results;
                   the open batches of batch mode (status) and cancelling them (cancel)
    glan status    the running (or last) build's requests, tokens and spend, live
    glan cache     verify the reply cache: its damaged entries; --repair keeps every readable one
    glan browse    the dataset browser (results/browse/index.html): its path; --open, --serve on loopback

Proposals themselves are a Snakemake target: `snakemake --cores 2 results/taxonomy/proposed.yaml`.
Run from the workflow directory (or pass -d); `--configfile` takes the same overlays as snakemake.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--directory", default=".", help="the workflow directory (default: here)")
    parser.add_argument(
        "--configfile", nargs="+", default=[], metavar="FILE", help="config overlays, as given to snakemake"
    )


def cmd_plan(args) -> int:
    from glan.cli.plan import build_plan
    from glan.cli.table import format_plan

    document = build_plan(args.directory, args.configfile)
    if args.json:
        sys.stdout.write(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        print("\n".join(format_plan(document, all_nodes=args.all)))
    return 0


def cmd_batch_export(args) -> int:
    from glan.cli.batch import export

    print("\n".join(export(args.directory, args.configfile, args.out)))
    return 0


def cmd_batch_import(args) -> int:
    from glan.cli.batch import import_report, import_results

    imported = import_results(args.directory, args.configfile, args.results, args.accept_model)
    print("\n".join(import_report(imported, args.results)))
    return 0 if imported.understood else 1


def cmd_batch_status(args) -> int:
    from glan.cli.batch import status

    print("\n".join(status(args.directory, args.configfile)))
    return 0


def cmd_batch_cancel(args) -> int:
    from glan.cli.batch import cancel

    if not args.batches and not args.all:
        print("glan batch cancel: name the batch ids to cancel (`glan batch status` lists them), or pass --all")
        return 2
    lines, status = cancel(args.directory, args.configfile, args.batches, args.all)
    print("\n".join(lines))
    return status


def cmd_cache_verify(args) -> int:
    from glan.cli.cache import verify

    lines, status = verify(args.directory, args.configfile, args.repair)
    print("\n".join(lines))
    return status


def cmd_status(args) -> int:
    from glan.cli.status import status

    return status(Path(args.directory), args.follow, args.once)


def cmd_browse(args) -> int:
    from glan.cli.browse import browse

    return browse(Path(args.directory), args.open, args.serve)


def cmd_inspect(args) -> int:
    from glan.cli.inspection import summary, tree
    from glan.config import load_config
    from glan.taxonomy import iter_nodes, leaves, load_taxonomy, select

    if args.depth is not None and args.depth < 1:
        print(f"glan inspect: --depth {args.depth}: give 1 or more levels (1: the fields alone)", file=sys.stderr)
        return 2
    directory = Path(args.directory)
    config = load_config(directory, args.configfile)
    taxonomy = Path(args.taxonomy) if args.taxonomy else directory / config["taxonomy"]
    roots = load_taxonomy(taxonomy)
    selected = set(select([leaf.id for leaf in leaves(roots)], config.get("select") or []))
    if args.node and args.node not in {n.id for n in iter_nodes(roots)}:
        print(f"{taxonomy}: no node with the id {args.node!r}", file=sys.stderr)
        return 1
    print("\n".join(tree(roots, directory / "results/nodes", selected, args.depth, args.node)))
    print()
    print("\n".join(summary(roots)))
    return 0


def cmd_review(args) -> int:
    from glan.curate.review import listing, review

    directory = Path(args.directory)
    proposal = Path(args.proposal) if args.proposal else directory / "results/taxonomy/proposed.yaml"
    if args.taxonomy:
        taxonomy = Path(args.taxonomy)
    else:
        from glan.config import load_config

        taxonomy = directory / load_config(directory, args.configfile)["taxonomy"]
    if args.list:
        print("\n".join(listing(proposal, taxonomy)))
        return 0
    interactive = not (args.all or args.accept)
    if interactive and not sys.stdin.isatty() and not args.interactive:
        print("review: give --accept ID..., --all, or --list (or --interactive to answer from stdin)", file=sys.stderr)
        return 2
    review(
        proposal,
        taxonomy,
        accept=args.accept,
        reject=args.reject,
        everything=args.all,
        interactive=interactive,
        dry_run=args.dry_run,
    )
    return 0


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="glan", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    commands = main.add_subparsers(dest="command", required=True)

    plan = commands.add_parser("plan", help="requests, tokens and cost a build would spend; what changed")
    _config_args(plan)
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan.add_argument("--all", action="store_true", help="list nodes with nothing to send too")
    plan.set_defaults(run=cmd_plan)

    batch = commands.add_parser("batch", help="a build's requests through a Batch API engine, offline")
    steps = batch.add_subparsers(dest="step", required=True)
    export = steps.add_parser("export", help="write the requests the next build would send, as known now")
    export.add_argument("out", metavar="OUT.jsonl", help="the Batch API input file (OUT-1.jsonl, ... if it takes more)")
    _config_args(export)
    export.set_defaults(run=cmd_batch_export)
    results = steps.add_parser("import", help="store the replies of Batch API output files in the cache")
    results.add_argument("results", nargs="+", metavar="RESULTS.jsonl", help="Batch API output (and error) files")
    results.add_argument(
        "--accept-model", action="store_true", help="store replies another model made than the one asked too"
    )
    _config_args(results)
    results.set_defaults(run=cmd_batch_import)
    state = steps.add_parser("status", help="the open batches of batch mode: state, counts, age, money held")
    _config_args(state)
    state.set_defaults(run=cmd_batch_status)
    stop = steps.add_parser("cancel", help="cancel open batches, storing the replies they completed")
    stop.add_argument("batches", nargs="*", metavar="BATCH", help="batch ids (as `glan batch status` lists them)")
    stop.add_argument("--all", action="store_true", help="cancel every open batch of the cache")
    _config_args(stop)
    stop.set_defaults(run=cmd_batch_cancel)

    cache = commands.add_parser("cache", help="the reply cache: find damaged entries, keep every readable one")
    cache_steps = cache.add_subparsers(dest="step", required=True)
    check = cache_steps.add_parser("verify", help="report damaged entries (count, keys, stages); run with no build")
    _config_args(check)
    check.add_argument("--repair", action="store_true", help="copy every readable entry of a damaged cache.db anew")
    check.set_defaults(run=cmd_cache_verify)

    progress = commands.add_parser("status", help="the running (or last) build's progress and spend, live")
    progress.add_argument("-d", "--directory", default=".", help="the workflow directory (default: here)")
    progress.add_argument("--follow", action="store_true", help="without a terminal: a line whenever it changes")
    progress.add_argument("--once", action="store_true", help="print the current state once")
    progress.set_defaults(run=cmd_status)

    page = commands.add_parser("browse", help="the dataset browser: print its path, open it, or serve it on loopback")
    page.add_argument("-d", "--directory", default=".", help="the workflow directory (default: here)")
    page.add_argument("--open", action="store_true", help="open it in the default browser")
    page.add_argument("--serve", action="store_true", help="serve it on 127.0.0.1, for a browser refusing local files")
    page.set_defaults(run=cmd_browse)

    inspect = commands.add_parser("inspect", help="the taxonomy as a tree with built counts; validates it")
    _config_args(inspect)
    inspect.add_argument("--taxonomy", help="the taxonomy file (default: the config's `taxonomy`)")
    inspect.add_argument("--depth", type=int, help="print this many levels")
    inspect.add_argument("--node", help="print the subtree of this node id")
    inspect.set_defaults(run=cmd_inspect)

    review = commands.add_parser("review", help="accept proposed nodes into taxonomy.yaml")
    _config_args(review)
    review.add_argument("--proposal", help="default: results/taxonomy/proposed.yaml")
    review.add_argument("--taxonomy", help="default: the config's `taxonomy`")
    review.add_argument("--accept", nargs="+", default=[], metavar="ID", help="accept these nodes and their subtrees")
    review.add_argument("--reject", nargs="+", default=[], metavar="ID", help="reject these nodes and their subtrees")
    review.add_argument("--all", action="store_true", help="accept every new node (less --reject)")
    review.add_argument("--list", action="store_true", help="list the new nodes and their ids")
    review.add_argument("--interactive", action="store_true", help="ask node by node even without a terminal")
    review.add_argument("--dry-run", action="store_true", help="print what would change, write nothing")
    review.set_defaults(run=cmd_review)
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from snakemake.exceptions import WorkflowError

    from glan.config import ConfigError
    from glan.curate.review import ReviewError
    from glan.llm.cache import CacheLayoutError
    from glan.llm.retry import EndpointError
    from glan.prompts import PromptError
    from glan.taxonomy import TaxonomyError

    try:
        return args.run(args)
    except (
        ConfigError,
        TaxonomyError,
        PromptError,
        ReviewError,
        CacheLayoutError,
        EndpointError,
        WorkflowError,
        OSError,
    ) as error:
        print(f"glan {args.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
