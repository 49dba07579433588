"""``leadpilot init-crm``: create leadpilot's fields/properties in the CRM (idempotent)."""

from __future__ import annotations

import typer


def init_crm(
    crm: str = typer.Option("", help="salesforce or hubspot (default: LEADPILOT_CRM; for sandbox, whichever is configured)."),
) -> None:
    """Create the custom fields (Salesforce) or the ``leadpilot`` property group (HubSpot).

    Safe to run again: a second run creates nothing and says so.
    """
    from connectors.errors import CRMError
    from sync.cli.common import load_settings_or_exit
    from sync.wiring.connector import make_connector

    settings = load_settings_or_exit()
    try:
        connector = make_connector(settings, crm=crm or None)
        created = connector.ensure_fields()
    except (CRMError, ValueError) as exc:
        typer.echo(f"init-crm failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if created:
        typer.echo(f"{connector.crm}: created {len(created)}: {', '.join(created)}")
    else:
        typer.echo(f"{connector.crm}: all leadpilot fields already exist; nothing changed")


def register(app: typer.Typer) -> None:
    """Add ``init-crm`` to the ``leadpilot`` CLI."""
    app.command("init-crm")(init_crm)
