"""The report of `snakemake --report`: its numbers, its plots and its page, apart so the numbers need no matplotlib."""
