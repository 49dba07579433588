"""``leadpilot evaluate | train | model list|promote|rollback``: the scoring model from a CSV export.

Contracts (other tools rely on them):

- ``evaluate --csv FILE --label COLUMN[=POSITIVE_VALUE] [--drop COL,…] [--text-columns COL,…]
  [--sep auto|,|;] [--test-size 0.25] [--seed 0] [--org NAME] --json OUT``: stratified random
  split with that seed and size, trains on the training part only, scores the test part, prints
  a short table and writes ``{"roc_auc","pr_auc","brier","ece","lift_top_decile","n_train","n_test","model"}``.
  Text columns are read by the encoder the deployment's daemon uses (``--org NAME``: that org's,
  from its settings file and its state directory; without it ``.env``'s, even with several orgs,
  since a CSV belongs to none).
- ``train --csv FILE --label … [same options] [--registry DIR]``: trains on the whole file
  and registers the model (promoted only if not worse than the champion), text read by the
  encoder of the org whose registry it goes to. Without ``--csv`` it runs the daemon's retrain
  job once on the configured CRM's history (``--json``).
- ``model list | promote VERSION | rollback`` on ``<state_dir>/models`` or ``--registry DIR``.
  ``promote`` and ``rollback`` on the deployment's registry then rescore the open leads in the
  CRM (``sync.jobs.rescore``: only the leads whose score, grade or reasons change are written);
  ``--no-rescore`` leaves that to the next change of each lead.

Missing columns, an empty file, a label with one class and other unusable input exit 2
with a message that says what to fix.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from sync.cli.common import ORG_OPTION

model_app = typer.Typer(help="The model registry: list versions, promote one, roll back.", no_args_is_help=True)

_CSV = typer.Option(..., "--csv", help="CSV export, one lead per row, with a header row.")
_LABEL = typer.Option(..., "--label", help="COLUMN (0/1 or true/false) or COLUMN=POSITIVE_VALUE.")
_TRAIN_CSV = typer.Option(None, "--csv", help="CSV export, one lead per row, with a header row. Without it: "
                          "train from the configured CRM's labelled history (the retrain job, once).")
_TRAIN_LABEL = typer.Option(None, "--label", help="COLUMN (0/1 or true/false) or COLUMN=POSITIVE_VALUE "
                            "(required with --csv).")
_DROP = typer.Option("", "--drop", help="Comma-separated columns to ignore (ids, leaky fields).")
_TEXT = typer.Option("", "--text-columns", help="Comma-separated free-text columns (read by the text encoder).")
_SEP = typer.Option("auto", "--sep", help="Field separator: auto, ',' or ';'.")
_SEED = typer.Option(0, "--seed", help="Seed of every split and model.")
_REGISTRY = typer.Option(None, "--registry", help="Model registry directory (default: <state_dir>/models).")
_ORG = ORG_OPTION


def _cols(value: str) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _state_dir(org: str | None = None) -> Path:
    """The state directory (of org ``org``); unusable settings exit 2 naming each variable."""
    return Path(_settings_without_crm(org).state_dir)


def _settings_without_crm(org: str | None = None, *, orgs: bool = True) -> Any:
    """The settings, strictly, except that ``LEADPILOT_CRM`` may be unset: the CSV commands and
    the model registry talk to no CRM. Any other problem (a misspelt variable included) exits 2.
    With ``--org`` (or LEADPILOT_ORGS_DIR and ``orgs``) the org's settings file instead."""
    import os

    from dotenv import dotenv_values

    from sync.cli.common import load_settings_or_exit, one_org_settings_or_exit
    from sync.config.orgs import configured_orgs_dir

    if org is not None or (orgs and configured_orgs_dir() is not None):
        return one_org_settings_or_exit(org)

    dotenv = Path(".env")
    chosen = os.environ.get("LEADPILOT_CRM") or (dotenv.is_file() and dotenv_values(dotenv).get("LEADPILOT_CRM"))
    return load_settings_or_exit(**({} if chosen else {"crm": "sandbox"}))


def _load(csv: Path, label: str, drop: str, text_columns: str, sep: str,
          settings: Any) -> tuple[Any, Any, Any, Any]:
    """The CSV's features, labels and spec, and the encoder of ``settings`` when it has text."""
    from scoring.training import DataError, read_csv_export

    if sep not in ("auto", ",", ";"):
        raise _fail(f"--sep must be auto, ',' or ';', got {sep!r}")
    try:
        frame, y, spec = read_csv_export(csv, label, drop=_cols(drop), text_columns=_cols(text_columns), sep=sep)
    except DataError as exc:
        raise _fail(str(exc)) from None
    encoder = None
    if spec.text:
        from sync.wiring.scorers import make_encoder

        try:
            # No embedding cache: a CSV's texts are not the CRM's, and these commands write only their output.
            encoder = make_encoder(settings, embedding_cache=False)
        except (FileNotFoundError, RuntimeError, ValueError) as exc:
            raise _fail(f"org {settings.org}: {exc}" if settings.org else str(exc)) from None
    return frame, y, spec, encoder


def _table(title: str, values: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in values.items():
        shown = f"{value:.4f}" if isinstance(value, float) and not math.isnan(value) else str(value)
        table.add_row(key, shown)
    Console().print(table)


def evaluate(csv: Path = _CSV, label: str = _LABEL, drop: str = _DROP, text_columns: str = _TEXT,
             sep: str = _SEP, test_size: float = typer.Option(0.25, "--test-size", help="Share of rows to test on."),
             seed: int = _SEED, json_out: Path = typer.Option(..., "--json", help="Where to write the metrics JSON."),
             org: str | None = typer.Option(None, "--org", metavar="NAME",
                                            help="Read text with org NAME's encoder (its file in LEADPILOT_ORGS_DIR, "
                                                 "its state directory); default: that of .env.")) -> None:
    """Hold out a stratified test part, train on the rest, report ROC-AUC, PR-AUC, Brier, ECE, lift."""
    from scoring.training import DataError, evaluate_frame

    # A CSV belongs to no org: without --org, .env's settings even when several orgs are configured.
    settings = _settings_without_crm(org, orgs=False)
    frame, y, spec, encoder = _load(csv, label, drop, text_columns, sep, settings)
    try:
        result = evaluate_frame(frame, y, spec, test_size=test_size, seed=seed, encoder=encoder)
    except DataError as exc:
        raise _fail(str(exc)) from None
    json_out.parent.mkdir(parents=True, exist_ok=True)
    json_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    _table(f"{csv.name}: test part ({result['n_test']} leads)", result)


def train(csv: Path | None = _TRAIN_CSV, label: str | None = _TRAIN_LABEL, drop: str = _DROP,
          text_columns: str = _TEXT, sep: str = _SEP, seed: int = _SEED, registry: Path | None = _REGISTRY,
          as_json: bool = typer.Option(False, "--json", help="Print the CRM retrain report as JSON."),
          org: str | None = _ORG) -> None:
    """Train on the whole file (or the CRM's history) and register the model; it becomes champion only if not worse."""
    from scoring.registry import ModelRegistry
    from scoring.training import DataError, train_scorer

    if csv is None:
        _train_from_crm(as_json, org)
        return
    if not label:
        raise _fail("--label is required with --csv: --label COLUMN (0/1 or true/false) or COLUMN=POSITIVE_VALUE")
    settings = _settings_without_crm(org)
    frame, y, spec, encoder = _load(csv, label, drop, text_columns, sep, settings)
    root = registry or Path(settings.state_dir) / "models"
    try:
        scorer, report = train_scorer(frame, y, spec, encoder=encoder, seed=seed)
    except DataError as exc:
        raise _fail(str(exc)) from None
    decision = ModelRegistry(root).challenge(scorer, report)
    _table(f"{decision.version} ({scorer.describe_model()}), validation", {
        k: report.metrics[k] for k in ("roc_auc", "pr_auc", "brier", "ece", "lift_top_decile")})
    typer.echo(decision.reason)
    typer.echo(f"opportunity flag: {report.opportunity_note}")


def _train_from_crm(as_json: bool, org: str | None) -> None:
    """The retrain job once: CRM history → challenger → champion/challenger decision, with progress."""
    from rich.console import Console

    from sync.cli.daemon import _deps, _emit, _settings
    from sync.jobs.retrain import run_retrain

    deps = _deps(_settings(org))
    with Console(stderr=True).status("reading the CRM's labelled history and training a challenger…"):
        report = run_retrain(deps)
    data: dict[str, Any] = {**report.counts(), "version": report.version, "champion": report.champion, "reason": report.reason,
            "metrics": {k: v for k, v in report.metrics.items() if isinstance(v, int | float | str)},
            "api_calls": report.api_calls, "error": report.error, "seconds": round(report.seconds, 1)}
    if report.rescore is not None:
        data["rescore"] = {**report.rescore.counts(), "error": report.rescore.error, "stopped": report.rescore.stopped}
    _emit(data, as_json)
    if not as_json:
        typer.echo(f"{report.reason or 'done'}; champion: {report.champion}")
        if report.metrics.get("opportunity_note"):
            typer.echo(f"opportunity flag: {report.metrics['opportunity_note']}")
        if report.rescore is not None:
            typer.echo(_rescored_line(report.rescore))
    if report.error:
        typer.echo(f"error: {report.error}", err=True)
        raise typer.Exit(1)


_RESCORE = typer.Option(True, "--rescore/--no-rescore",
                        help="Rescore the open leads in the CRM with the new champion (only changed ones are written).")


def _rescored_line(report: Any) -> str:
    line = (f"open leads rescored with {report.model_version}: {report.changed} changed, {report.written} written, "
            f"{report.unchanged} unchanged, {report.parked} parked; {report.closed} closed leads left as they are")
    if report.changed and not report.written and not report.parked and report.ok and not report.stopped:
        line += " (dry run: nothing written)"
    if report.stopped:
        line += f"; stopped early: {report.stopped} (the rest are rescored when they change)"
    return line


def _rescore(version: str, registry: Path | None, rescore: bool, org: str | None) -> None:
    """After an operator's promote/rollback: rescore the open leads (the deployment's registry only)."""
    if registry is not None or not rescore:
        return
    from sync.cli.daemon import _deps, _settings
    from sync.jobs.rescore import run_rescore

    try:
        deps = _deps(_settings(org))  # logging with the secrets masked; failures said in words
    except typer.Exit:
        typer.echo(f"error: {version} is the champion, but the open leads were not rescored (see above); fix "
                   f"that, then run `leadpilot model promote {version}` again (it rewrites only what changes)",
                   err=True)
        raise typer.Exit(1) from None
    report = run_rescore(deps, reason=f"{version} promoted by an operator")
    typer.echo(_rescored_line(report))
    if report.error:
        typer.echo(f"error: rescoring failed: {report.error}; run `leadpilot model promote {version}` again",
                   err=True)
        raise typer.Exit(1)


def _registry(registry: Path | None, org: str | None) -> Any:
    from scoring.registry import ModelRegistry

    return ModelRegistry(registry or _state_dir(org) / "models")


@model_app.command("list")
def model_list(registry: Path | None = _REGISTRY, org: str | None = _ORG) -> None:
    """Registered versions, newest last; * marks the champion."""
    entries = _registry(registry, org).list()
    if not entries:
        typer.echo("no models registered yet; train one with `leadpilot train`")
        return
    for e in entries:
        auc = e.get("metrics", {}).get("roc_auc")
        mark = "*" if e["champion"] else " "
        typer.echo(f"{mark} {e['version']}  {e['created_at'][:19]}  roc_auc={auc:.4f}  "
                   f"{e.get('model', {}).get('name', '')}  n_train={e['trained_on']['n_train']}")


@model_app.command("promote")
def model_promote(version: str = typer.Argument(..., help="Version to make the champion, e.g. v0002."),
                  registry: Path | None = _REGISTRY, rescore: bool = _RESCORE, org: str | None = _ORG) -> None:
    """Make VERSION the champion (an operator's override of champion/challenger), then rescore the open leads."""
    try:
        _registry(registry, org).promote(version)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    typer.echo(f"{version} is the champion")
    _rescore(version, registry, rescore, org)


@model_app.command("rollback")
def model_rollback(registry: Path | None = _REGISTRY, rescore: bool = _RESCORE, org: str | None = _ORG) -> None:
    """Restore the previous champion, then rescore the open leads."""
    try:
        version = _registry(registry, org).rollback()
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"rolled back: {version} is the champion")
    _rescore(str(version), registry, rescore, org)


def register(app: typer.Typer) -> None:
    """Add ``evaluate``, ``train`` and the ``model`` group to the ``leadpilot`` CLI."""
    app.command("evaluate")(evaluate)
    app.command("train")(train)
    app.add_typer(model_app, name="model")
