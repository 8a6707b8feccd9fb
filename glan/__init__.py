"""GLAN-style synthetic instruction data as an incremental, content-addressed build."""
