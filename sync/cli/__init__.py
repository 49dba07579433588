"""``leadpilot`` — the command line. Each group of commands lives in its own module.

This module only builds the typer app and registers the command groups: ``config`` (check),
``crm`` (init-crm), ``scoring`` (evaluate, train, model list|promote|rollback), ``sandbox``
(sandbox serve), ``daemon`` (run, sync, rewards, status, report, demo, evaluate-policy),
``explain`` (why a lead went where it went) and ``backfill`` (score every existing lead).
"""

from __future__ import annotations

import typer

from sync.cli import backfill, config, crm, daemon, explain, sandbox, scoring

app = typer.Typer(
    name="leadpilot",
    help="CRM integration daemon: scores leads, flags opportunities, routes them to reps and learns from outcomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)

# Each command group registers its commands (``register(app)``); an import error in one fails loudly.
for group in (config, crm, scoring, sandbox, daemon, explain, backfill):
    group.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
