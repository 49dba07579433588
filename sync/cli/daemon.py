"""``leadpilot run | worker | sync | rewards | status | report | demo | evaluate-policy``.

Each command builds a ``Deps`` from the settings and calls a job body or the daemon;
``--json`` prints (or writes) what a machine reads.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from sync.cli.common import ALL_ORGS_OPTION, ORG_OPTION
from sync.config.settings import Settings


def _settings(org: str | None = None, **overrides: Any) -> Settings:
    """The settings (of org ``org`` with LEADPILOT_ORGS_DIR, or its only org), strictly; any problem
    printed one line per variable, exit 2 (no traceback)."""
    from sync.cli.common import one_org_settings_or_exit

    return one_org_settings_or_exit(org, **overrides)


def _routing_settings(org: str | None = None, **overrides: Any) -> Settings:
    """``_settings`` for a command that routes leads, with a warning on stderr (the journal under
    systemd) when the routing file the admin named does not exist: leads then go to every active
    CRM user, which ``leadpilot check`` reports as a problem (exit 2)."""
    from sync.cli.config import named_routing_file_missing

    settings = _settings(org, **overrides)
    problem = named_routing_file_missing(settings)
    if problem is not None:
        typer.echo(f"warning: {problem}; until then leads go to every active CRM user without the "
                   "routing file's limits", err=True)
    return settings


def _deps(settings: Settings, metrics: Any = None, *, patient: bool = False) -> Any:
    """Open the store and connect to the CRM, or exit in words: 2 for what the admin must fix,
    1 for a store or CRM that cannot be reached now, 75 for a CRM API limit (``patient``: the
    daemon first waits for it within ``STARTUP_MAX_WAIT_SECONDS``)."""
    import sqlalchemy as sa

    from connectors.errors import AuthError, CRMError, Kind
    from sync.cli.common import CONFIG_ERROR, TEMPORARY, UNAVAILABLE, store_failure_message
    from sync.ops.logs import configure_logging, register_settings_secrets
    from sync.ops.notify import SystemdNotifier
    from sync.ops.startup import STARTUP_MAX_WAIT_SECONDS, StartDeferred, build_patiently, is_rate_limit
    from sync.store import StoreError
    from sync.wiring.deps import build_deps

    configure_logging(settings.log_level, settings.log_format)
    register_settings_secrets(settings)
    notifier = SystemdNotifier()
    try:
        return build_patiently(lambda: build_deps(settings, metrics=metrics),
                               max_wait=STARTUP_MAX_WAIT_SECONDS if patient else 0.0,
                               sleep=time.sleep, on_wait=notifier.status)
    except StartDeferred as exc:
        typer.echo(f"cannot start yet: {exc}", err=True)
        raise typer.Exit(TEMPORARY) from None
    except CRMError as exc:
        if is_rate_limit(exc):
            typer.echo(f"cannot start yet: the CRM's API limit is spent: {exc}", err=True)
            raise typer.Exit(TEMPORARY) from None
        typer.echo(f"cannot start: {exc}", err=True)
        # Rejected credentials and missing permissions need the admin; a fault may pass (1: restarted).
        fix = exc.kind is Kind.CONFIG or isinstance(exc, AuthError)
        raise typer.Exit(CONFIG_ERROR if fix else UNAVAILABLE) from None
    except (StoreError, sa.exc.SQLAlchemyError) as exc:
        typer.echo(f"cannot start: {store_failure_message(settings, exc)}", err=True)
        raise typer.Exit(UNAVAILABLE) from None
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(CONFIG_ERROR) from None


def _emit(data: dict[str, Any], as_json: bool, out: Path | None = None) -> None:
    text = json.dumps(data, indent=2, default=str, sort_keys=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")
    if as_json:
        typer.echo(text)


def run(org: str | None = ORG_OPTION) -> None:
    """Run the daemon: sync, rewards and retrain jobs on their schedules until SIGTERM/SIGINT."""
    from sync.cli.common import hold_store_or_exit
    from sync.ops.daemon import Daemon
    from sync.ops.metrics import DEFAULT_ORG, Metrics

    settings = _routing_settings(org)
    with hold_store_or_exit(settings, "run"):  # before the CRM is contacted: one daemon per store
        metrics = Metrics(org=settings.org or DEFAULT_ORG)
        # Before the CRM log-in, which may wait minutes for the API limit: a taken port is said at once.
        _serve_metrics_or_exit(metrics, settings.metrics_port, "set LEADPILOT_METRICS_PORT to a free port (0: none)")
        deps = _deps(settings, metrics, patient=True)
        daemon = Daemon(deps)
        daemon.install_signal_handlers()
        code = daemon.run()
    raise typer.Exit(code)


def worker(
    name: str = typer.Option("", "--name", help="This worker's name in logs and the queue (default host:pid)."),
    heartbeat_seconds: float = typer.Option(10.0, "--heartbeat-seconds", min=1.0,
                                            help="How often this worker tells the queue it is alive."),
    stalled_after_seconds: float = typer.Option(60.0, "--stalled-after-seconds", min=5.0,
                                                help="A worker silent this long is presumed dead: its job "
                                                     "goes to another worker."),
    stalled_check_seconds: int = typer.Option(30, "--stalled-check-seconds", min=1, max=59,
                                              help="How often the workers look for a dead worker's jobs."),
    metrics_port: int | None = typer.Option(None, "--metrics-port", min=0, max=65535,
                                            help="Serve /metrics on this port (default: LEADPILOT_METRICS_PORT); "
                                                 "0: no metrics endpoint."),
    metrics_port_offset: int = typer.Option(0, "--metrics-port-offset", min=0, max=65535,
                                            help="Added to the metrics port, so that workers on one machine each "
                                                 "have their own: the template unit passes its instance number "
                                                 "(leadpilot-worker@2: 9464 + 2)."),
    threads: int = typer.Option(1, "--threads", min=1,
                                help="CPU threads for this worker's scoring (torch, OpenMP): run one worker per "
                                     "core, each with one thread (the default)."),
) -> None:
    """Run jobs from the PostgreSQL job queue (procrastinate): start any number, on any machines.

    With LEADPILOT_ORGS_DIR a worker serves every org there, each org's jobs under its own lock;
    its metrics carry each job's org."""
    import socket

    from sync.cli.common import CONFIG_ERROR, hold_store_or_exit, open_store_or_exit
    from sync.ops.logs import configure_logging, register_settings_secrets
    from sync.ops.metrics import DEFAULT_ORG, Metrics
    from sync.ops.workers import WorkerOptions, build_app, run_worker

    orgs = _worker_orgs()
    configure_logging(orgs[0].log_level, orgs[0].log_format)
    for one in orgs:
        register_settings_secrets(one)
    if stalled_after_seconds <= 2 * heartbeat_seconds:
        typer.echo("--stalled-after-seconds must exceed twice --heartbeat-seconds, or a live worker "
                   "would be taken for dead", err=True)
        raise typer.Exit(CONFIG_ERROR)
    options = WorkerOptions(heartbeat_seconds=heartbeat_seconds, stalled_after_seconds=stalled_after_seconds,
                            stalled_check_seconds=stalled_check_seconds, threads=threads)
    try:
        build_app(orgs)  # the store on PostgreSQL, the schedule expressible as cron
    except ImportError:
        typer.echo("cannot start: workers need procrastinate: pip install 'leadpilot[workers]'", err=True)
        raise typer.Exit(CONFIG_ERROR) from None
    except ValueError as exc:
        typer.echo(f"cannot start: {exc}", err=True)
        raise typer.Exit(CONFIG_ERROR) from None
    port, fix = _worker_metrics_port(orgs, metrics_port, metrics_port_offset)
    metrics = Metrics(org=orgs[0].org or DEFAULT_ORG)
    _serve_metrics_or_exit(metrics, port, fix)
    # The migrations: the queue's schema (the default one, shared by the orgs) and each org's own.
    shared = orgs[0].without_org()
    for one in [shared, *orgs] if orgs[0].org else orgs:
        open_store_or_exit(one).close()
    with hold_store_or_exit(shared, "worker", shared=True):  # workers together, never beside `run`
        run_worker(orgs, options, name or f"{socket.gethostname()}:{os.getpid()}", metrics)


def _worker_metrics_port(orgs: list[Settings], port: int | None, offset: int) -> tuple[int, str]:
    """The port a worker serves /metrics on (0: none) and, for a port it cannot have, what to change:
    ``--metrics-port`` (else LEADPILOT_METRICS_PORT, one for all the orgs) plus ``--metrics-port-offset``."""
    from sync.cli.common import config_failure

    if port is None:
        ports = sorted({one.metrics_port for one in orgs})
        if len(ports) > 1:
            config_failure([f"LEADPILOT_METRICS_PORT: a worker serves every org's metrics on one port, but the org "
                            f"files name {', '.join(map(str, ports))}; set it once, in the environment, or give "
                            "--metrics-port N"])
        [port] = ports
        base = f"LEADPILOT_METRICS_PORT={port}"
    else:
        base = f"--metrics-port {port}"
    if port == 0:
        return 0, ""
    if port + offset > 65535:
        config_failure([f"--metrics-port-offset {offset}: {base} + {offset} is beyond the last port, 65535; "
                        "give a smaller offset or base port"])
    source = f"{base} + --metrics-port-offset {offset}" if offset else base
    return port + offset, (f"it comes from {source}: give each worker on this machine a port of its own with "
                           "--metrics-port N or --metrics-port-offset N, or --metrics-port 0 for none")


def _serve_metrics_or_exit(metrics: Any, port: int, fix: str) -> None:
    """Serve ``metrics`` on ``port`` (0: not at all), or one line naming the port and ``fix``, exit 2."""
    from sync.cli.common import CONFIG_ERROR
    from sync.ops.metrics import MetricsPortError, start_metrics_server

    try:
        start_metrics_server(metrics, port)
    except MetricsPortError as exc:
        typer.echo(f"cannot start: {exc}; {fix}", err=True)
        raise typer.Exit(CONFIG_ERROR) from None


def _worker_orgs() -> list[Settings]:
    """Every org of LEADPILOT_ORGS_DIR (or the one of .env), warning on a missing routing file."""
    from sync.cli.common import org_settings_or_exit
    from sync.cli.config import named_routing_file_missing

    orgs = org_settings_or_exit(None, True)
    for one in orgs:
        problem = named_routing_file_missing(one)
        if problem is not None:
            org = f"org {one.org}: " if one.org else ""
            typer.echo(f"warning: {org}{problem}; until then leads go to every active CRM user without the "
                       "routing file's limits", err=True)
    return orgs


def sync(
    once: bool = typer.Option(True, "--once", help="Run one cycle and exit (the daemon is `leadpilot run`)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Compute and log everything; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the cycle report as JSON."),
    org: str | None = ORG_OPTION,
) -> None:
    """Run one sync cycle: pull, score, flag, route, write back."""
    from sync.cli.common import hold_store_or_exit
    from sync.jobs.cycle import run_cycle

    settings = _routing_settings(org, **({"dry_run": True} if dry_run else {}))
    # A dry run writes nothing, so it may look at a store a daemon is working on.
    with nullcontext() if dry_run else hold_store_or_exit(settings, "sync"):
        report = run_cycle(_deps(settings))
    data = {**report.counts(), "mode": report.mode, "api_calls": report.api_calls, "stopped": report.stopped,
            "error": report.error, "assignments": report.assignments,
            "watermark": report.watermark_after.isoformat() if report.watermark_after else None}
    _emit(data, as_json)
    if not as_json:
        typer.echo(" ".join(f"{k}={v}" for k, v in report.counts().items()) + f" mode={report.mode}"
                   + (f" stopped: {report.stopped}" if report.stopped else ""))
    raise typer.Exit(1 if report.error else 0)


def rewards(
    once: bool = typer.Option(True, "--once", help="Run the rewards job once and exit."),
    as_json: bool = typer.Option(False, "--json"),
    org: str | None = ORG_OPTION,
) -> None:
    """Apply newly closed outcomes to the routing policy (each exactly once)."""
    from sync.jobs.rewards import run_rewards

    report = run_rewards(_deps(_settings(org)))
    _emit({**report.counts(), "ticked": report.ticked, "error": report.error, "stopped": report.stopped}, as_json)
    if not as_json:
        typer.echo(" ".join(f"{k}={v}" for k, v in report.counts().items()))
    raise typer.Exit(1 if report.error else 0)


def status(
    as_json: bool = typer.Option(False, "--json"),
    offline: bool = typer.Option(False, "--offline", help="Do not contact the CRM (no API budget)."),
    org: str | None = ORG_OPTION,
    all_orgs: bool = ALL_ORGS_OPTION,
) -> None:
    """Last runs, pending and parked leads, per-rep load and win rates, API budget, model and policy versions.

    ``--all``: every org of LEADPILOT_ORGS_DIR, one after the other (``--json``: ``{"orgs": {name: status}}``)."""
    from sync.cli.common import org_settings_or_exit
    from sync.ops.status import collect_status, print_status

    every = [(one, collect_status(one, _open(one), None if offline else _connector_or_none(one)))
             for one in org_settings_or_exit(org, all_orgs)]
    if as_json:
        _emit({"orgs": {one.org or "default": data for one, data in every}} if all_orgs else every[0][1], True)
        return
    for one, data in every:
        if one.org:
            typer.echo(f"== org {one.org} ==")
        print_status(data)


def report(out: Path = typer.Option(Path("out"), "--out", help="Directory for the HTML report."),
           org: str | None = ORG_OPTION, all_orgs: bool = ALL_ORGS_OPTION) -> None:
    """Render the HTML report from the state store of this deployment (``--all``: one per org, in OUT/<org>)."""
    from sync.cli.common import org_settings_or_exit
    from sync.ops.report import render_report
    from sync.ops.status import report_data

    for one in org_settings_or_exit(org, all_orgs):
        store, connector = _open(one), _connector_or_none(one, "; reps are shown by id")
        where = out / one.org if all_orgs and one.org else out
        typer.echo(str(render_report(report_data(one, store, connector), where)))


def _open(settings: Settings) -> Any:
    from sync.cli.common import open_store_or_exit

    return open_store_or_exit(settings)


def _connector_or_none(settings: Settings, without: str = "") -> Any:
    """The CRM connector, or None with a line on stderr: status and the report still show the store."""
    try:
        from sync.wiring.connector import make_connector

        return make_connector(settings)
    except Exception as exc:  # noqa: BLE001 - the local state must still be shown
        org = f"org {settings.org}: " if settings.org else ""
        typer.echo(f"({org}CRM not reachable: {exc}{without})", err=True)
        return None


def demo(
    crm: str = typer.Option("salesforce", help="salesforce or hubspot: which dialect of the sandbox to use."),
    days: int = typer.Option(90, min=1, help="Simulated days to run."),
    seed: int = typer.Option(0, help="Seed of the sandbox world and of the policy."),
    leads: int = typer.Option(1000, min=0, help="Leads of training history preloaded in the sandbox."),
    out: Path = typer.Option(Path("out/demo"), "--out", help="Directory for the state store and the report."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the summary as JSON to this file."),
) -> None:
    """Try leadpilot without a CRM account: a simulated CRM, real connector, real daemon cycle."""
    if crm not in ("salesforce", "hubspot"):
        raise typer.BadParameter("use salesforce or hubspot", param_hint="--crm")
    from sync.ops.demo import run_demo

    summary = run_demo(crm=crm, days=days, seed=seed, history=leads, out_dir=out)
    _emit(summary, False, json_out)


def evaluate_policy(
    policy: str = typer.Option(..., "--policy", help="round_robin, ucb1, thompson or contextual."),
    since: datetime | None = typer.Option(None, "--since", formats=["%Y-%m-%d"], help="Only decisions from this date."),
    as_json: bool = typer.Option(False, "--json"),
    org: str | None = ORG_OPTION,
) -> None:
    """Estimate a policy's conversion rate from the logged decisions (IPS, SNIPS, doubly robust)."""
    from sync.cli.common import open_store_or_exit
    from sync.ops.status import describe_evaluation, evaluate_logged_policy

    settings = _settings(org)
    since_utc = since.replace(tzinfo=UTC) if since is not None else None
    store = open_store_or_exit(settings)
    try:
        result = evaluate_logged_policy(settings, store, policy, since_utc)
    except ValueError as exc:
        typer.echo(f"cannot evaluate {policy}: {exc}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        _emit(result, True)
    else:
        typer.echo("\n".join(describe_evaluation(policy, result)))


def register(app: typer.Typer) -> None:
    """Add the daemon's commands to the ``leadpilot`` CLI."""
    app.command("run")(run)
    app.command("sync")(sync)
    app.command("worker")(worker)
    app.command("rewards")(rewards)
    app.command("status")(status)
    app.command("report")(report)
    app.command("demo")(demo)
    app.command("evaluate-policy")(evaluate_policy)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
