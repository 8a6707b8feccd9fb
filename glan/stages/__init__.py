"""One module per stage, each with `plan` (pure: upstream → requests) and `assemble` (upstream + replies → artifact)."""
