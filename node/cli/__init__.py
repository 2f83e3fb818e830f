"""The `ehrnet` command line: one module per command group; `python -m node.cli` runs it."""
