"""``leadpilot`` — the command line. Each group of commands lives in its own module.

This module only builds the typer app and registers the command modules, so that
several parts of the product can add commands without touching one file.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="leadpilot",
    help="CRM integration daemon: scores leads, flags opportunities, routes them to reps and learns from outcomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)

# Each module exposes ``register(app: typer.Typer) -> None``.
COMMAND_MODULES = (
    "sync.commands.config",  # check
    "sync.commands.crm",  # init-crm
    "sync.commands.scoring",  # evaluate, train, model list|promote|rollback
    "sync.commands.sandbox",  # sandbox serve
    "sync.commands.daemon",  # run, sync, rewards, status, report, demo, evaluate-policy
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # that command group is not built yet
                continue
            raise
        module.register(app)


_register_all()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
