"""What ``leadpilot status``, ``leadpilot report`` and ``leadpilot evaluate-policy`` read from the state store."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from sync.config.settings import Settings
from sync.ops.report import ReportData
from sync.wiring.scorers import champion_model


def collect_status(settings: Settings, store: Any, connector: Any = None, runs: int = 10) -> dict[str, Any]:
    """Everything ``leadpilot status`` shows, as a JSON-ready dict."""
    assignments = store.assignments()
    won: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    for a in assignments:
        if a.rep_id and a.outcome and not a.shadow:
            closed[a.rep_id] += 1
            won[a.rep_id] += a.outcome == "won"
    load = store.rep_load()
    reps = sorted(set(load) | set(closed))
    champion = champion_model(settings, store)  # the registry's: `leadpilot model promote` changes it
    policy_name = f"routing:{settings.routing.policy}"
    versions = store.policy_versions(policy_name)
    data: dict[str, Any] = {
        "crm": settings.crm,
        "mode": "dry-run" if settings.dry_run else "shadow" if settings.shadow else "live",
        "runs": [{"kind": r.kind, "started_at": r.started_at.isoformat(), "status": r.status,
                  "seconds": (r.finished_at - r.started_at).total_seconds() if r.finished_at else None,
                  "counts": r.counts, "api_calls": r.api_calls, "errors": r.errors}
                 for r in store.recent_runs(runs)],
        "leads": store.count_leads(),
        "pending_writes": len(store.unwritten_decisions()),
        "parked": [{"lead_id": s.lead_id, "attempts": s.attempts, "reason": s.last_error,
                    "retry_after": s.parked_until.isoformat() if s.parked_until else None}
                   for s in store.list_parked()],
        "reps": {r: {"open": load.get(r, 0), "closed": closed[r],
                     "win_rate": round(won[r] / closed[r], 4) if closed[r] else None} for r in reps},
        "model": {"version": champion[0], "metrics": champion[1]} if champion else
                 {"version": None, "note": "cold start: no trained model yet"},
        "policy": {"name": settings.routing.policy, "version": versions[-1][0] if versions else 0},
        "watermarks": {s: (w.isoformat() if (w := store.get_watermark(s)) else None)
                       for s in ("leads", "outcomes")},
        "api_budget": None,
    }
    if connector is not None:
        try:
            check = connector.check()
            b = check.budget
            data["api_budget"] = {"used": b.used, "limit": b.limit, "remaining": b.remaining, "window": b.window}
        except Exception as exc:  # noqa: BLE001 - status shows the local state even when the CRM is down
            data["api_budget"] = {"error": str(exc)}
    return data


def print_status(data: dict[str, Any]) -> None:
    """Human-readable status with rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]leadpilot[/bold] crm={data['crm']} mode={data['mode']} "
                  f"model={data['model']['version'] or 'cold start'} "
                  f"policy={data['policy']['name']} v{data['policy']['version']}")
    runs = Table("job", "started", "status", "seconds", "counts", title="Last runs")
    for r in data["runs"]:
        runs.add_row(r["kind"], r["started_at"], r["status"], f"{r['seconds'] or 0:.1f}",
                     " ".join(f"{k}={v}" for k, v in r["counts"].items() if v))
    console.print(runs)
    console.print(f"leads by status: {data['leads']}; decisions not yet written: {data['pending_writes']}")
    parked = Table("lead", "attempts", "retry after", "reason", title=f"Parked leads ({len(data['parked'])})")
    for p in data["parked"][:50]:
        parked.add_row(p["lead_id"], str(p["attempts"]), p["retry_after"] or "", p["reason"] or "")
    console.print(parked)
    reps = Table("rep", "open", "closed", "win rate", title="Reps")
    for rep, v in data["reps"].items():
        reps.add_row(rep, str(v["open"]), str(v["closed"]), "" if v["win_rate"] is None else f"{v['win_rate']:.1%}")
    console.print(reps)
    console.print(f"API budget: {data['api_budget']}")


def report_data(settings: Settings, store: Any) -> ReportData:
    """The HTML report's inputs from a deployment's store (no ground truth here: the round-robin
    line is an inverse-propensity estimate of uniform random routing over the same eligible reps)."""
    assignments = [a for a in store.assignments() if not a.shadow and a.rep_id]
    scores = store.lead_state(a.lead_id for a in assignments)
    closed = [a for a in assignments if a.outcome and scores.get(a.lead_id) and scores[a.lead_id].score is not None]
    by_day: dict[int, list[float]] = defaultdict(lambda: [0.0, 0.0])
    start = assignments[0].decided_at if assignments else None
    for a in assignments:
        if a.outcome is None or start is None:
            continue
        day = (a.decided_at - start).days
        eligible = [r for r, why in a.considered.items() if why is None] or [a.rep_id]
        won = float(a.outcome == "won")
        by_day[day][0] += won
        by_day[day][1] += won * (1.0 / len(eligible)) / a.propensity
    days = sorted(by_day)
    learned, rr = _cumsum([by_day[d][0] for d in days]), _cumsum([by_day[d][1] for d in days])
    champion = champion_model(settings, store)
    return ReportData(
        title=f"leadpilot report ({settings.crm})",
        summary={"assignments": len(assignments), "closed": len(closed),
                 "won": sum(a.outcome == "won" for a in closed),
                 "model": champion[0] if champion else "cold start"},
        y_true=[int(a.outcome == "won") for a in closed],
        y_prob=[float(scores[a.lead_id].score or 0.0) for a in closed],
        days=days, conversions_learned=learned, conversions_round_robin=rr,
        rep_assigned=dict(Counter(a.rep_id for a in assignments if a.rep_id)),
        rep_open=store.rep_load(),
        notes=["Round robin here is an inverse-propensity estimate from the logged decisions."],
    )


def _cumsum(xs: list[float]) -> list[float]:
    out, total = [], 0.0
    for x in xs:
        total += x
        out.append(total)
    return out


def evaluate_logged_policy(settings: Settings, store: Any, policy: str, since: datetime | None) -> dict[str, Any]:
    """Off-policy estimate of ``policy`` from the logged, closed, non-shadow decisions."""
    from dataclasses import asdict, is_dataclass

    from allocation.ope import LoggedDecision, OPERefused, evaluate_named

    logged = [a for a in store.assignments(since=since) if a.outcome and not a.shadow and a.rep_id]
    if not logged:
        raise ValueError("no closed decisions logged yet" + (f" since {since.date()}" if since else ""))
    records = [LoggedDecision(context=a.context, eligible=[r for r, why in a.considered.items() if why is None]
                              or [a.rep_id], chosen=a.rep_id, propensity=a.propensity,
                              reward=float(a.outcome == "won"), probabilities=a.probabilities) for a in logged if a.rep_id]
    try:
        result = evaluate_named(records, policy, seed=settings.routing.seed)
    except OPERefused as exc:
        raise ValueError(str(exc)) from exc
    if is_dataclass(result) and not isinstance(result, type):
        return {k: v for k, v in asdict(result).items()}
    return dict(vars(result))


WIDE_INTERVAL = 0.05  # DR half-width (conversion-rate points) above which the summary says why


def describe_evaluation(policy: str, result: dict[str, Any]) -> list[str]:
    """``evaluate-policy``'s human summary: the estimates, how much data spoke, and what to do
    when the interval is too wide to compare policies."""
    n = int(result["n"])
    lines = [f"{policy}: estimated conversion rate from {n:,} closed decisions "
             f"(logged policy converted {result['logged_rate']:.1%}; {result['confidence']:.0%} intervals)"]
    names = {"ips": "IPS", "snips": "SNIPS", "dr": "doubly robust", "switch_dr": "switch-DR"}
    for key, label in names.items():
        est = result.get(key)
        if est:
            lines.append(f"  {label:<14} {est['value']:.3f}  [{est['low']:.3f}, {est['high']:.3f}]")
    if result.get("switch_dr"):
        lines.append(f"  (switch-DR: {result['switched']} decisions with weight > {result['switch_threshold']:g} use the reward model alone)")
    ess = float(result["effective_sample_size"])
    lines.append(f"effective sample size {ess:,.0f} of {n:,}; largest weight {result['max_weight']:,.0f}")
    if result.get("overlap") is not None and result.get("relative_sd_bound") is not None:
        floor = 1.96 * float(result["relative_sd_bound"]) * float(result["dm"]["value"] if result.get("dm") else result["dr"]["value"])
        lines.append(f"the logged decisions made {policy}'s choice with probability {result['overlap']:.2f} on average; "
                     f"no unbiased estimate from them is tighter than ±{floor:.3f}")
    unsupported = float(result.get("unsupported_mass") or 0.0)
    if unsupported > 0:
        lines.append(f"{unsupported:.1%} of {policy}'s choices go to reps the logged policy could not have chosen; "
                     f"no log can say how those leads would have done, so every estimate above may be off by up to ±{unsupported:.3f}")
    half = (result["dr"]["high"] - result["dr"]["low"]) / 2
    if half > WIDE_INTERVAL:
        lines.append(
            f"the doubly robust interval is ±{half:.3f}: few logged decisions chose the reps {policy} would choose. "
            "Collect more decisions, or for an evaluation period set LEADPILOT_ROUTING__EXPLORATION_FLOOR=0.3 "
            "(on the routing benchmark: 5-8 % error on 5,000 decisions, at about 30 % of the learned uplift; 0.6 for under 5 %; see README) "
            "and evaluate on decisions since (--since)."
        )
    return lines

