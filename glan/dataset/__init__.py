"""The whole-dataset steps after the stages: join, clean, export, accounting and the report."""
