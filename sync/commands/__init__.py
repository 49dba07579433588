"""CLI command groups, one module each; see sync/cli.py."""
