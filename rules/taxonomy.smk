from glan.curate.propose import propose_settings


# Not part of `rule all`: run it on demand with `snakemake --cores 2 results/taxonomy/proposed.yaml`,
# then accept nodes into taxonomy.yaml with `glan review`.
rule propose_taxonomy:
    input:
        taxonomy=config["taxonomy"],
        prompt="prompts/taxonomy.yaml",
    output:
        "results/taxonomy/proposed.yaml",
    log:
        "logs/taxonomy/propose.log",
    benchmark:
        "benchmarks/taxonomy/propose.tsv"
    conda:
        "../envs/glan.yaml"
    params:
        settings=propose_settings(config),
    script:
        "../scripts/propose_taxonomy.py"
