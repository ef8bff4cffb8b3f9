"""The kalshi_ws benchmark: run it with ``python bench/run.py`` (see bench/README.md)."""
