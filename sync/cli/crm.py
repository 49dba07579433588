"""``leadpilot init-crm``: set up leadpilot in the CRM (idempotent; ``--dry-run`` says what it would do).

On a CRM whose connector can set up the whole org (``init_crm``: on Salesforce the fields, the
integration user's and the reps' permission sets, the page layout section and the list view), that
runs; otherwise the connector's ``ensure_fields`` creates the fields/properties.
"""

from __future__ import annotations

from typing import Any

import typer

from sync.cli.common import ORG_OPTION


def init_crm(
    crm: str = typer.Option("", help="salesforce or hubspot (default: LEADPILOT_CRM; for sandbox, whichever is configured)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would change; change nothing."),
    org: str | None = ORG_OPTION,
) -> None:
    """Create leadpilot's fields (and on Salesforce: permission sets, layout section, list view).

    Safe to run again: a second run changes nothing and says so.
    """
    from connectors.errors import CRMError
    from sync.cli.common import one_org_settings_or_exit
    from sync.wiring.connector import make_connector

    settings = one_org_settings_or_exit(org)
    try:
        connector = make_connector(settings, crm=crm or None)
        setup = getattr(connector, "init_crm", None)
        if setup is not None:
            changes = setup(_routing_rep_ids(settings, connector), dry_run=dry_run)
            _report(connector.crm, changes, dry_run)
            return
        if dry_run:
            typer.echo(f"{connector.crm}: --dry-run: init-crm would create the missing leadpilot fields; "
                       "nothing changed")
            return
        created = connector.ensure_fields()
    except (CRMError, ValueError) as exc:
        typer.echo(f"init-crm failed: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if created:
        typer.echo(f"{connector.crm}: created {len(created)}: {', '.join(created)}")
    else:
        typer.echo(f"{connector.crm}: all leadpilot fields already exist; nothing changed")


def _report(crm: str, changes: list[str], dry_run: bool) -> None:
    if not changes:
        typer.echo(f"{crm}: everything leadpilot needs is in place; nothing changed")
        return
    head = f"would make {len(changes)} change(s) (dry run: nothing changed)" if dry_run else \
        f"made {len(changes)} change(s)"
    typer.echo(f"{crm}: {head}:")
    for line in changes:
        typer.echo(f"  - {line}")


def _routing_rep_ids(settings: Any, connector: Any) -> list[str]:
    """CRM user ids of the reps the daemon routes to: the routing file's (by id or e-mail, plus the
    active unlisted users with ``unlisted_reps = "include"``), or without a file every active human
    CRM user but the integration user — the same set ``sync`` routes to, so that everyone who gets
    leads can read their scores."""
    from sync.wiring.routing import integration_user_id, routed_reps

    crm_reps = connector.list_reps()
    reps, _ = routed_reps(settings, crm_reps, integration_user_id(settings, crm_reps))
    return [rep.id for rep in reps]


def register(app: typer.Typer) -> None:
    """Add ``init-crm`` to the ``leadpilot`` CLI."""
    app.command("init-crm")(init_crm)
