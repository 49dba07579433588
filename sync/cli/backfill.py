"""``leadpilot backfill``: score every existing lead of the org (``sync.jobs.backfill``).

Embedded (the default), this process runs the chunks itself with a ``rich`` progress bar, holding
the store's backfill lock (``sync.ops.instance``: a second embedded backfill of the org refuses,
naming this one);
``--defer`` queues them for ``leadpilot worker`` processes (PostgreSQL) and follows their
progress. Either way a run that was killed is resumed by running the command again: done
chunks are skipped. ``leadpilot status`` shows the plan's progress.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import typer

from sync.cli.common import ORG_OPTION

BACKENDS = {"static": "static", "transformer": None}  # None: the configured transformer runtime (transformer / onnx)


def backfill(
    org: str | None = ORG_OPTION,
    backend: str = typer.Option("", "--backend",
                                help="Text encoder for this backfill: static or transformer (default: "
                                     "LEADPILOT_SCORING__ENCODER_BACKEND when set, else static only where "
                                     "it lost at most 0.005 ROC-AUC to the transformer on the benchmarks)."),
    chunk_leads: int = typer.Option(20_000, "--chunk-leads", min=1, help="About how many leads one chunk holds."),
    batch_leads: int = typer.Option(20_000, "--batch-leads", min=1,
                                    help="Leads read, scored and written together (memory is bounded by one "
                                         "batch; Salesforce writes more than 10,000 changes through Bulk API 2.0)."),
    restart: bool = typer.Option(False, "--restart", help="Forget an unfinished backfill and plan a new one."),
    defer: bool = typer.Option(False, "--defer", help="Queue the chunks for `leadpilot worker` processes "
                                                      "(PostgreSQL store) instead of running them here."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="With --defer: follow the workers until done."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Score every existing lead of the org, writing only leads whose values change; resumable."""
    from sync.cli.common import CONFIG_ERROR, org_settings_or_exit

    if backend:
        if backend not in BACKENDS:
            raise typer.BadParameter(f"use static or transformer, not {backend!r}", param_hint="--backend")
        if defer:
            typer.echo("--backend applies to this process; with --defer the workers score with their own "
                       "LEADPILOT_SCORING__ENCODER_BACKEND", err=True)
            raise typer.Exit(CONFIG_ERROR)
        chosen = BACKENDS[backend]
        if chosen is not None:
            os.environ["LEADPILOT_SCORING__ENCODER_BACKEND"] = chosen
        elif os.environ.get("LEADPILOT_SCORING__ENCODER_BACKEND") == "static":
            os.environ["LEADPILOT_SCORING__ENCODER_BACKEND"] = "transformer"
    elif not defer and "LEADPILOT_SCORING__ENCODER_BACKEND" not in os.environ:
        from scoring.encoder_static import backfill_backend

        if backfill_backend() == "static":  # issue 19's rule, on the measured text_value rows
            os.environ["LEADPILOT_SCORING__ENCODER_BACKEND"] = "static"
    [settings] = org_settings_or_exit(org, False)
    from sync.cli.common import hold_store_or_exit
    from sync.cli.daemon import _deps

    if defer:
        _deferred(settings, _deps(settings), chunk_leads, batch_leads, restart, wait, as_json)
        return
    # One embedded backfill per store (org): a second one would score the same chunks. Taken
    # before the CRM is contacted; a `leadpilot run` on the store goes on beside it.
    with hold_store_or_exit(settings, "backfill", lock="backfill"):
        deps = _deps(settings)
        summary = _embedded(deps, chunk_leads, batch_leads, restart, quiet=as_json)
    data = _outcome(deps, summary.progress, totals=summary.totals(), error=summary.error, stopped=summary.stopped)
    _print(data, as_json)
    raise typer.Exit(1 if summary.error else 0)


def _embedded(deps: Any, chunk_leads: int, batch_leads: int, restart: bool, *, quiet: bool) -> Any:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sync.jobs.backfill import plan_backfill, run_backfill

    progress = plan_backfill(deps, chunk_leads=chunk_leads, restart=restart)
    t0, leads0 = time.monotonic(), progress.leads_done
    bar = Progress(TextColumn("backfill"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
                   TextColumn("{task.fields[leads]:,} leads, {task.fields[rate]:.0f}/s"), TimeElapsedColumn(),
                   disable=quiet, transient=False)
    with bar:
        task = bar.add_task("chunks", total=len(progress.chunks), completed=len(progress.done),
                            leads=progress.leads_done, rate=0.0)

        def on_chunk(now: Any, _report: Any) -> None:
            rate = (now.leads_done - leads0) / max(time.monotonic() - t0, 1e-9)
            bar.update(task, completed=len(now.done), leads=now.leads_done, rate=rate)

        return run_backfill(deps, batch_leads=batch_leads, plan=progress, on_chunk=on_chunk)


def _deferred(settings: Any, deps: Any, chunk_leads: int, batch_leads: int, restart: bool, wait: bool,
              as_json: bool) -> None:
    from sync.cli.common import CONFIG_ERROR
    from sync.jobs.backfill import load_progress, plan_backfill
    from sync.ops.workers import defer_backfill, queue_conninfo

    try:
        queue_conninfo(settings.resolved_store_url)
    except ValueError as exc:
        typer.echo(f"--defer: {exc}", err=True)
        raise typer.Exit(CONFIG_ERROR) from None
    progress = plan_backfill(deps, chunk_leads=chunk_leads, restart=restart)
    queued = defer_backfill(settings, progress, batch_leads)
    if not as_json:
        typer.echo(f"backfill: {len(progress.chunks)} chunks, {len(progress.done)} done, {queued} queued for the workers")
    if wait and not progress.complete:
        _follow(deps, progress, quiet=as_json)
    _print({**_outcome(deps, load_progress(deps.store)), "queued": queued}, as_json)


def _follow(deps: Any, progress: Any, *, quiet: bool, poll_seconds: float = 2.0) -> Any:
    """Show the workers' progress until every chunk is done (Ctrl-C stops watching, not the workers)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from sync.jobs.backfill import load_progress

    bar = Progress(TextColumn("backfill (workers)"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
                   TextColumn("{task.fields[leads]:,} leads"), TimeElapsedColumn(), disable=quiet)
    try:
        with bar:
            task = bar.add_task("chunks", total=len(progress.chunks), completed=len(progress.done),
                                leads=progress.leads_done)
            while not progress.complete:
                time.sleep(poll_seconds)  # the CLI's own wait for other processes, not a job body's clock
                progress = load_progress(deps.store) or progress
                bar.update(task, completed=len(progress.done), leads=progress.leads_done)
    except KeyboardInterrupt:
        typer.echo("stopped watching; the workers go on (`leadpilot status` shows the progress)", err=True)
    return progress


def _outcome(deps: Any, progress: Any, **extra: Any) -> dict[str, Any]:
    return {"progress": progress.as_dict() if progress is not None else None,
            "api_calls": deps.connector.api_usage(), **extra}


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str, sort_keys=True))
        return
    p = data.get("progress") or {}
    line = (f"backfill: {p.get('chunks_done', 0)}/{p.get('chunks_total', 0)} chunks, "
            f"{p.get('leads_done', 0):,} leads read")
    totals = data.get("totals")
    if totals:
        line += " (" + " ".join(f"{k}={v}" for k, v in totals.items()) + ")"
    typer.echo(line)
    if data.get("stopped"):
        typer.echo(f"stopped early: {data['stopped']}; run the command again to resume")
    if data.get("error"):
        typer.echo(f"error: {data['error']}; run the command again to resume", err=True)


def register(app: typer.Typer) -> None:
    """Add ``leadpilot backfill`` to the CLI."""
    app.command("backfill")(backfill)
