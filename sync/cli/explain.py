"""``leadpilot explain LEAD_ID`` and ``leadpilot explain --lead-json FILE``: why a lead went where it went.

For a lead leadpilot has seen: its score, grade and reasons (as written on the CRM record),
then every routing decision recorded for it (a lead left in the queue is decided again
later), each with every rep considered and why each was left out, the policy's choice, its
propensity, and the model and policy versions, all by rep name. For a hypothetical lead
(a JSON file of lead fields): who would get it now, and why, from a throwaway copy of the
policy; nothing is recorded, saved or written.

Names come from the CRM's users, else from the routing file's ``name``, else the raw id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from connectors.records import LEAD_ATTRIBUTES, NUMERIC_ATTRIBUTES, Lead, Rep
from sync.cli.common import ORG_OPTION
from sync.config.settings import Settings

HYPOTHETICAL = "(hypothetical lead)"


# ---------------------------------------------------------------- names
def rep_names(settings: Settings, crm_reps: Sequence[Rep]) -> dict[str, str]:
    """Owner id -> the name people know: the CRM's user name, else the routing file's ``name``."""
    names: dict[str, str] = {}
    path = settings.routing.file
    if path.exists():
        from sync.config.routing import RoutingError, load_routing

        try:
            config = load_routing(path)
        except RoutingError:
            config = None
        by_email = {r.email.lower(): r.id for r in crm_reps if r.email}
        for entry in config.reps if config else ():
            rid = entry.id or by_email.get((entry.email or "").lower())
            if rid and entry.name:
                names[rid] = entry.name
            elif rid is None and entry.email and entry.name:
                names[entry.email] = entry.name
    names.update({r.id: r.name for r in crm_reps if r.name})
    return names


class Names:
    """``name(id)``: "Ana Weber" (or the id itself when nobody knows it)."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)

    def __call__(self, rep_id: str | None) -> str:
        if rep_id is None:
            return "(nobody)"
        return self.names.get(rep_id, rep_id)


# ---------------------------------------------------------------- what is said
def decision_lines(
    name: Names, *, rep: str | None, considered: Mapping[str, str | None], probabilities: Mapping[str, float] | None,
    propensity: float, policy: str, version: int | None, at: datetime, fallback: str | None, rule: str | None = None,
) -> list[str]:
    """One decision in words: the outcome, then every rep considered, excluded ones with why."""
    when = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    policy_v = f"policy {policy}" + (f" v{version}" if version is not None else "")
    eligible = [r for r, why in considered.items() if why is None]
    if rep is None:
        where = f"left with the fallback owner {name(fallback)}" if fallback else "left with its current owner"
        head = f"{when} ({policy_v}): queued: none of the {len(considered)} reps could take it; {where}"
    else:
        head = (f"{when} ({policy_v}): {name(rep)} chosen with probability {propensity:.3f} "
                f"among {len(eligible)} eligible of {len(considered)} reps")
    lines = [head]
    if rule:
        lines.append(f"  assignment {rule} matched this lead")
    width = max([len(name(r)) for r in considered] + [4])
    for rid in sorted(considered, key=lambda r: (considered[r] is not None, name(r))):
        why = considered[rid]
        if why is None:
            p = (probabilities or {}).get(rid)
            share = f" (probability {p:.3f})" if p is not None else ""
            what = ("chosen" if rid == rep else "eligible") + share
        else:
            what = f"excluded: {why}"
        lines.append(f"  {name(rid):<{width}}  {what}")
    return lines


def lead_lines(lead_id: str, *, score: float | None, grade: str | None, reasons: str | None, model: str | None,
               owner: str | None, status: str | None, name: Names) -> list[str]:
    """The lead's score, grade and reasons."""
    if score is None and grade is None:
        first = f"lead {lead_id}: not scored yet"
    else:
        shown = f"{score:.0%} conversion probability" if score is not None else "no score"
        first = f"lead {lead_id}: {shown}, grade {grade or '-'}" + (f" (model {model})" if model else "")
    lines = [first]
    if reasons:
        lines.append(f"  reasons: {reasons}")
    if status:
        lines.append(f"  in leadpilot: {status}")
    if owner is not None:
        lines.append(f"  owner in the CRM now: {name(owner)}")
    return lines


# ---------------------------------------------------------------- a known lead
def explain_lead(settings: Settings, store: Any, connector: Any, lead_id: str) -> dict[str, Any]:
    """Everything ``explain LEAD_ID`` says, as data (``--json``) with the lines people read."""
    crm_reps: list[Rep] = []
    lead: Lead | None = None
    crm_note = None
    if connector is not None:
        try:
            crm_reps = connector.list_reps()
            found = connector.get_leads([lead_id])
            lead = found[0] if found else None
        except Exception as exc:  # noqa: BLE001 - explain still tells what the store knows
            crm_note = f"(CRM not reachable: {exc}; showing what leadpilot recorded)"
    name = Names(rep_names(settings, crm_reps))
    state = store.lead_state([lead_id]).get(lead_id)
    decisions = store.assignments([lead_id])
    if state is None and not decisions and lead is None:
        raise LookupError(f"lead {lead_id!r} is unknown: leadpilot has not seen it and the CRM does not return it; "
                          "check the id (a Salesforce Lead id or a HubSpot record id)")
    written = dict(lead.written) if lead is not None else {}
    reasons = written.get("reasons")
    fallback = _fallback(settings, crm_reps)
    lines = lead_lines(lead_id, score=state.score if state else None, grade=(state.grade if state else None) or written.get("grade"),
                       reasons=str(reasons) if reasons else None, model=state.model_version if state else written.get("model_version"),
                       owner=lead.owner_id if lead else None, status=_status(state), name=name)
    if crm_note:
        lines.insert(0, crm_note)
    if not decisions:
        lines.append("no routing decision recorded: " + ("it had an owner who keeps it, or it was closed"
                                                        if state is not None else "leadpilot has not processed it yet"))
    out_decisions = []
    for n, d in enumerate(decisions, start=1):
        lines.append(f"decision {n}" + (" (shadow: recorded, not written)" if d.shadow else "") + ":")
        lines += ["  " + x for x in decision_lines(
            name, rep=d.rep_id, considered=d.considered, probabilities=d.probabilities, propensity=d.propensity,
            policy=d.policy_name, version=d.policy_version, at=d.decided_at, fallback=fallback)]
        if d.outcome:
            lines.append(f"    outcome: {d.outcome}" + (f" on {d.outcome_at:%Y-%m-%d}" if d.outcome_at else ""))
        out_decisions.append({
            "decided_at": d.decided_at.isoformat(), "rep": d.rep_id, "rep_name": name(d.rep_id) if d.rep_id else None,
            "queued": d.rep_id is None, "propensity": d.propensity, "policy": d.policy_name,
            "policy_version": d.policy_version, "shadow": d.shadow, "outcome": d.outcome,
            "reps": {name(r): {"id": r, "excluded": why, "probability": (d.probabilities or {}).get(r)}
                     for r, why in d.considered.items()},
        })
    return {"lead_id": lead_id, "score": state.score if state else None,
            "grade": (state.grade if state else None) or written.get("grade"), "reasons": reasons,
            "model_version": state.model_version if state else written.get("model_version"),
            "owner": lead.owner_id if lead else None, "decisions": out_decisions, "lines": lines}


def _status(state: Any) -> str | None:
    if state is None:
        return None
    if state.status == "parked":
        return f"parked: {state.last_error}" if state.last_error else "parked"
    return state.status


def _fallback(settings: Settings, crm_reps: Sequence[Rep]) -> str | None:
    from sync.wiring.routing import routed_reps

    try:
        return routed_reps(settings, crm_reps, None)[1]
    except Exception:  # noqa: BLE001 - only a name in a sentence
        return None


# ---------------------------------------------------------------- a hypothetical lead
def lead_from_json(data: Mapping[str, Any], now: datetime) -> Lead:
    """A ``Lead`` from ``{"country": "Germany", "employees": 250, "State": "Bayern", …}``: the
    attributes leadpilot knows by name (``state`` too), any other key as a CRM field."""
    if not isinstance(data, Mapping):
        raise ValueError('the lead file must hold one JSON object, e.g. {"country": "Germany", "employees": 250}')
    attrs: dict[str, Any] = {}
    for key in LEAD_ATTRIBUTES:
        value = data.get(key)
        if value is None:
            continue
        if key in NUMERIC_ATTRIBUTES:
            try:
                attrs[key] = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"{key}: {value!r} is not a number; e.g. \"{key}\": 250") from None
        else:
            attrs[key] = str(value)
    known = {*LEAD_ATTRIBUTES, "text", "email", "state"}
    raw = {k: v for k, v in data.items() if k not in known}
    if data.get("state") is not None:
        raw["state"] = str(data["state"])
    return Lead(id=HYPOTHETICAL, created_at=now, modified_at=now, owner_id=None, email=data.get("email"),
                text=str(data.get("text") or ""), raw=raw, **attrs)


def explain_hypothetical(deps: Any, lead: Lead, now: datetime) -> dict[str, Any]:
    """Who would get ``lead`` at ``now`` and why: scored with the current model, routed by a
    scratch copy of the policy (nothing recorded or saved)."""
    from sync.jobs.lead_context import lead_attributes, routing_context

    name = Names(rep_names(deps.settings, deps.connector.list_reps()))
    score = deps.scorers.current().score([lead.features()])[0]
    box = deps.router.scratch()
    context = routing_context(lead, score, deps.settings.routing.context_fields)
    choice = box.assign(lead.id, context, now, attrs=lead_attributes(lead))
    lines = lead_lines(lead.id, score=score.probability, grade=score.grade, reasons=score.reasons,
                       model=score.model_version, owner=None, status=None, name=name)
    lines.append("would be routed now:")
    lines += ["  " + x for x in decision_lines(
        name, rep=choice.rep, considered={r: choice.excluded.get(r) for r in choice.considered},
        probabilities=choice.probabilities, propensity=choice.propensity, policy=choice.policy,
        version=box.version, at=now, fallback=choice.fallback, rule=choice.rule)]
    lines.append("(nothing was recorded or written)")
    return {"lead_id": None, "score": score.probability, "grade": score.grade, "reasons": score.reasons,
            "model_version": score.model_version, "rep": choice.rep, "rep_name": name(choice.rep) if choice.rep else None,
            "queued": choice.rep is None, "propensity": choice.propensity, "policy": choice.policy,
            "policy_version": box.version, "rule": choice.rule, "at": now.isoformat(),
            "reps": {name(r): {"id": r, "excluded": choice.excluded.get(r), "probability": choice.probabilities.get(r)}
                     for r in choice.considered},
            "lines": lines}


# ---------------------------------------------------------------- the command
def explain(
    lead_id: str | None = typer.Argument(None, help="The CRM id of a lead leadpilot has seen."),
    lead_json: Path | None = typer.Option(None, "--lead-json", help="A JSON file with a hypothetical lead's fields."),
    at: datetime | None = typer.Option(None, "--at", formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
                                       help="With --lead-json: route as of this UTC time instead of now."),
    offline: bool = typer.Option(False, "--offline", help="Do not contact the CRM (ids instead of names, no reasons)."),
    as_json: bool = typer.Option(False, "--json", help="Print the explanation as JSON."),
    org: str | None = ORG_OPTION,
) -> None:
    """Why a lead went where it went: score, grade, reasons, every rep considered and why each was left out."""
    from sync.cli.daemon import _deps, _settings
    from sync.store import open_store

    if (lead_id is None) == (lead_json is None):
        typer.echo("give a lead id (leadpilot explain 00Q5g00000AbCdE) or --lead-json FILE, not both", err=True)
        raise typer.Exit(2)
    settings = _settings(org)
    if lead_json is not None:
        now = at.replace(tzinfo=UTC) if at is not None else datetime.now(UTC)
        try:
            lead = lead_from_json(json.loads(lead_json.read_text(encoding="utf-8")), now)
        except (OSError, ValueError) as exc:
            typer.echo(f"{lead_json}: {exc}", err=True)
            raise typer.Exit(2) from None
        data = explain_hypothetical(_deps(settings), lead, now)
    else:
        assert lead_id is not None
        connector = None
        if not offline:
            try:
                from sync.wiring.connector import make_connector

                connector = make_connector(settings)
            except Exception as exc:  # noqa: BLE001 - explain still tells what the store knows
                typer.echo(f"(CRM not reachable: {exc})", err=True)
        try:
            data = explain_lead(settings, open_store(settings), connector, lead_id)
        except LookupError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps({k: v for k, v in data.items() if k != "lines"}, indent=2, default=str, sort_keys=True))
    else:
        typer.echo("\n".join(data["lines"]))


def register(app: typer.Typer) -> None:
    """Add ``explain`` to the ``leadpilot`` CLI."""
    app.command("explain")(explain)
