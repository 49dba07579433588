"""``python -m sync.cli``: the ``leadpilot`` command."""

from sync.cli import main

main()
