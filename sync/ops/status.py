"""What ``leadpilot status``, ``leadpilot report`` and ``leadpilot evaluate-policy`` read from the state store."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from sync.config.settings import Settings
from sync.ops.report import ReportData
from sync.ops.routing_view import print_routing, routing_summary
from sync.wiring.scorers import champion_model, model_dir


def collect_status(settings: Settings, store: Any, connector: Any = None, runs: int = 10,
                   now: datetime | None = None) -> dict[str, Any]:
    """Everything ``leadpilot status`` shows, as a JSON-ready dict (``now``: the clock queue ages
    are measured on; default the wall clock)."""
    assignments = store.assignments()
    won: Counter[str] = Counter()
    closed: Counter[str] = Counter()
    for a in assignments:
        if a.rep_id and a.outcome and not a.shadow:
            closed[a.rep_id] += 1
            won[a.rep_id] += a.outcome == "won"
    load = store.rep_load()
    reps = sorted(set(load) | set(closed))
    people = _people(settings, connector)
    name = people["names"]
    champion = champion_model(settings, store)  # the registry's: `leadpilot model promote` changes it
    policy_name = f"routing:{settings.routing.policy}"
    versions = store.policy_versions(policy_name)
    data: dict[str, Any] = {
        **({"org": settings.org} if settings.org else {}),  # with LEADPILOT_ORGS_DIR: whose status
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
        "reps": {name.get(r, r): {"id": r, "open": load.get(r, 0), "closed": closed[r],
                                  "win_rate": round(won[r] / closed[r], 4) if closed[r] else None} for r in reps},
        "routing": routing_summary(settings, store, now or datetime.now(UTC), name, people["capacity"], people["crm_load"]),
        "model": {"version": champion[0], "metrics": champion[1]} if champion else
                 {"version": None, "note": "cold start: no trained model yet"},
        "opportunity": opportunity_status(settings, store, champion),
        "policy": {"name": settings.routing.policy, "version": versions[-1][0] if versions else 0},
        "watermarks": {s: (w.isoformat() if (w := store.get_watermark(s)) else None)
                       for s in ("leads", "outcomes")},
        "api_budget": None,
        "backfill": _backfill(store),
    }
    queue = queue_status(settings)
    if queue is not None:
        data["queue"] = queue
    if connector is not None:
        try:
            check = connector.check()
            b = check.budget
            data["api_budget"] = {"used": b.used, "limit": b.limit, "remaining": b.remaining, "window": b.window}
        except Exception as exc:  # noqa: BLE001 - status shows the local state even when the CRM is down
            data["api_budget"] = {"error": str(exc)}
    if people["error"]:
        data["routing"]["crm_error"] = people["error"]
    return data


def opportunity_status(settings: Settings, store: Any, champion: tuple[str, dict[str, Any]] | None) -> dict[str, Any]:
    """Whether the opportunity flag marks leads now, at which threshold, and why not when it does not."""
    target = settings.scoring.target_precision
    if champion is None:
        runs = store.recent_runs(limit=1, kind="train")
        why = runs[0].errors if runs and runs[0].errors else "no retrain has run yet"
        if settings.scoring.zero_shot_model:
            return {"flagging": True, "threshold": 0.5, "target_precision": None,
                    "note": f"cold start: the zero-shot model flags the leads it answers yes for, a precision no "
                            f"history has checked yet ({why})"}
        return {"flagging": False, "threshold": None, "target_precision": target,
                "note": f"cold start: nothing is flagged until a model is trained ({why})"}
    metrics = {**champion[1], **_registry_meta(settings, champion[0])}
    threshold = metrics.get("opportunity_threshold")
    trained_for = metrics.get("target_precision")
    note = metrics.get("opportunity_note") or (
        f"flags leads at P(convert) >= {threshold:.2f}" if isinstance(threshold, int | float) else
        "nothing is flagged: no threshold reached the target precision when this model was trained; "
        "the next retrain says why")
    if isinstance(trained_for, int | float) and abs(trained_for - target) > 1e-9:
        note += f" (set for precision {trained_for:.2f}; the configured {target:.2f} applies from the next retrain)"
    return {"flagging": threshold is not None, "threshold": threshold,
            "target_precision": trained_for if isinstance(trained_for, int | float) else target, "note": note}


def _registry_meta(settings: Settings, version: str) -> dict[str, Any]:
    """What the registry keeps of the champion's flag (any model: trained by the daemon or from a CSV)."""
    from scoring.registry import ModelRegistry

    try:
        meta = ModelRegistry(model_dir(settings)).metadata(version)
    except (KeyError, OSError, ValueError):  # a champion whose folder is gone: the logged metrics speak
        return {}
    out: dict[str, Any] = {k: meta[k] for k in ("opportunity_threshold", "opportunity_note") if k in meta}
    if isinstance(meta.get("model"), dict) and "target_precision" in meta["model"]:
        out["target_precision"] = meta["model"]["target_precision"]
    return out


def _backfill(store: Any) -> dict[str, Any] | None:
    """The last backfill's progress (``sync.jobs.backfill``): chunks done/total, leads, times."""
    from sync.jobs.backfill import load_progress

    progress = load_progress(store)
    return progress.as_dict() if progress is not None else None


_QUEUE_COUNTS = """
SELECT task_name, status::text AS status, count(*) AS n FROM procrastinate_jobs
WHERE args->>'org' = :org AND status IN ('todo', 'doing', 'failed') GROUP BY task_name, status"""
_QUEUE_LAST = """
SELECT DISTINCT ON (j.task_name) j.task_name, j.status::text AS status, e.at, j.attempts
FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id
WHERE j.args->>'org' = :org AND e.type IN ('succeeded', 'failed', 'aborted')
ORDER BY j.task_name, e.at DESC"""
_QUEUE_WORKERS = """
SELECT w.id, w.last_heartbeat, extract(epoch FROM now() - w.last_heartbeat) AS age,
       j.task_name, j.args->>'org' AS org
FROM procrastinate_workers w LEFT JOIN procrastinate_jobs j ON j.worker_id = w.id AND j.status = 'doing'
ORDER BY w.id"""


def queue_status(settings: Settings) -> dict[str, Any] | None:
    """The org's jobs in the workers' queue (``leadpilot worker``: procrastinate's tables, read
    directly, three small queries): per task the jobs waiting, running and failed and the last one
    finished; and the live workers with their last heartbeat and the job each runs. None when the
    store is not PostgreSQL or its queue tables do not exist (no worker was ever set up)."""
    import sqlalchemy as sa

    from sync.ops.workers import org_key
    from sync.store.engine import create_store_engine

    url = settings.resolved_store_url
    if not url.startswith("postgres"):
        return None
    engine = create_store_engine(url)  # the queue is in the store's default schema, shared by the orgs
    try:
        with engine.connect() as conn:
            if conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
                return None
            org = org_key(settings)
            tasks: dict[str, dict[str, Any]] = {}

            def task(name: str) -> dict[str, Any]:
                return tasks.setdefault(name, {"waiting": 0, "running": 0, "failed": 0, "last_finished": None})

            names = {"todo": "waiting", "doing": "running", "failed": "failed"}
            for row in conn.execute(sa.text(_QUEUE_COUNTS), {"org": org}):
                task(row.task_name)[names[row.status]] = int(row.n)
            for row in conn.execute(sa.text(_QUEUE_LAST), {"org": org}):
                task(row.task_name)["last_finished"] = {"at": row.at.isoformat(), "status": row.status,
                                                        "attempts": int(row.attempts)}
            workers = [{"id": int(row.id), "last_heartbeat": row.last_heartbeat.isoformat(),
                        "heartbeat_age_seconds": round(float(row.age), 1),
                        "running": f"{row.task_name} ({row.org})" if row.task_name else None}
                       for row in conn.execute(sa.text(_QUEUE_WORKERS))]
    except sa.exc.SQLAlchemyError as exc:
        from sync.config.urls import scrub

        return {"error": f"job queue unreadable: {scrub(str(exc).splitlines()[0], url)}"}
    finally:
        engine.dispose()
    return {"org": org, "tasks": dict(sorted(tasks.items())), "workers": workers}


def _print_queue(console: Any, queue: dict[str, Any]) -> None:
    from rich.table import Table

    if "error" in queue:
        console.print(queue["error"], markup=False)
        return
    table = Table("task", "waiting", "running", "failed", "last finished", title=f"Job queue (org {queue['org']})")
    for name, t in queue["tasks"].items():
        last = t["last_finished"]
        table.add_row(name, str(t["waiting"]), str(t["running"]), str(t["failed"]),
                      f"{last['at']} {last['status']}" if last else "")
    console.print(table)
    workers = Table("worker", "last heartbeat", "age (s)", "running", title=f"Workers ({len(queue['workers'])})")
    for w in queue["workers"]:
        workers.add_row(str(w["id"]), w["last_heartbeat"], f"{w['heartbeat_age_seconds']:.1f}", w["running"] or "")
    console.print(workers)


def _people(settings: Settings, connector: Any) -> dict[str, Any]:
    """Rep names (the CRM's, else the routing file's), each routed rep's ``max_open`` and the open
    leads the CRM says they hold — what the CRM can tell; names from the file alone offline."""
    from sync.cli.explain import rep_names

    out: dict[str, Any] = {"names": {}, "capacity": None, "crm_load": None, "error": None}
    if connector is None:
        out["names"] = rep_names(settings, [])
        return out
    try:
        from sync.wiring.routing import integration_user_id, routed_reps

        crm_reps = connector.list_reps()
        out["names"] = rep_names(settings, crm_reps)
        reps, _ = routed_reps(settings, crm_reps, integration_user_id(settings, crm_reps))
        out["capacity"] = {r.id: r.max_open for r in reps}
        out["crm_load"] = connector.open_lead_counts([r.id for r in reps])
    except Exception as exc:  # noqa: BLE001 - status shows the local state even when the CRM is down
        out["error"] = f"rep names and CRM workload unavailable: {exc}"
        out["names"] = out["names"] or rep_names(settings, [])
    return out


def print_status(data: dict[str, Any]) -> None:
    """Human-readable status with rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    org = f"org={data['org']} " if data.get("org") else ""
    console.print(f"[bold]leadpilot[/bold] {org}crm={data['crm']} mode={data['mode']} "
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
    reps = Table("rep", "open", "closed", "win rate", title="Reps (leads leadpilot routed)")
    for rep, v in data["reps"].items():
        reps.add_row(rep, str(v["open"]), str(v["closed"]), "" if v["win_rate"] is None else f"{v['win_rate']:.1%}")
    console.print(reps)
    print_routing(console, data["routing"])
    console.print(f"Opportunity flag: {data['opportunity']['note']}", markup=False)
    b = data.get("backfill")
    if b:
        console.print(f"backfill: {b['chunks_done']}/{b['chunks_total']} chunks, {b['leads_done']:,} leads"
                      f"{' (complete)' if b['complete'] else ''}; started {b['started']}, "
                      f"last progress {b['last_progress']}")
    if data.get("queue"):
        _print_queue(console, data["queue"])
    console.print(f"API budget: {data['api_budget']}")


def report_data(settings: Settings, store: Any, connector: Any = None, now: datetime | None = None) -> ReportData:
    """The HTML report's inputs from a deployment's store. There is no ground truth here: the
    routing chart is the logged policy's conversion rate against round robin as
    ``evaluate-policy`` estimates it, each with its interval, or a plain note that too few
    outcomes are closed yet. Reps are named (the CRM's names when ``connector`` is given)."""
    assignments = [a for a in store.assignments(effective=True) if not a.shadow and a.rep_id]
    scores = store.lead_state(a.lead_id for a in assignments)
    closed = [a for a in assignments if a.outcome and scores.get(a.lead_id) and scores[a.lead_id].score is not None]
    champion = champion_model(settings, store)
    people = _people(settings, connector)
    name = people["names"]
    routing = routing_summary(settings, store, now or datetime.now(UTC), name, people["capacity"], people["crm_load"])
    estimates, note = policy_estimates(settings, store)
    speed = routing["speed_to_lead_seconds"]
    summary: dict[str, Any] = {
        "assignments": len(assignments), "closed": len(closed), "won": sum(a.outcome == "won" for a in closed),
        "model": champion[0] if champion else "cold start",
        "assigned (with a rep)": routing["assigned"], "queued (fallback owner)": routing["queued"]["size"],
        "oldest queued (minutes)": "-" if routing["queued"]["oldest_seconds"] is None
        else round(routing["queued"]["oldest_seconds"] / 60),
        "speed to lead p50 / p95 (s), leads created since leadpilot started": "-" if speed["p50"] is None else f"{speed['p50']:.0f} / {speed['p95']:.0f}",
        "reps left out, by reason": ", ".join(f"{k}: {v}" for k, v in routing["exclusions"].items()) or "-",
        "grade mix": ", ".join(f"{g}: {n}" for g, n in routing["grade_mix"].items()) or "-",
    }
    load = {n: v["crm_open"] for n, v in routing["load"].items() if v["crm_open"] is not None}
    return ReportData(
        title=f"leadpilot report ({settings.org + ', ' if settings.org else ''}{settings.crm})",
        summary=summary,
        y_true=[int(a.outcome == "won") for a in closed],
        y_prob=[float(scores[a.lead_id].score or 0.0) for a in closed],
        rep_assigned=dict(Counter(name.get(a.rep_id, a.rep_id) for a in assignments if a.rep_id)),
        rep_open=load or {name.get(r, r): n for r, n in store.rep_load().items()},
        policy_estimates=estimates,
        notes=[note, "Per-rep load: open leads each rep holds in the CRM (its workload, what max_open counts) "
                     "when the CRM could be asked, else those leadpilot routed."],
    )


MIN_CLOSED = 30  # closed outcomes below which the report does not chart an estimate


def policy_estimates(settings: Settings, store: Any) -> tuple[list[tuple[str, float, float, float]], str]:
    """(logged policy, round robin) conversion-rate estimates with 95 % intervals, and a note
    saying what they are — or that too few outcomes are closed to estimate anything yet."""
    closed = sum(1 for a in store.assignments(effective=True) if a.outcome and not a.shadow and a.rep_id)
    if closed < MIN_CLOSED:
        return [], (f"Too few closed outcomes yet to compare routing with round robin: {closed} closed "
                    f"(at least {MIN_CLOSED} needed). The chart appears once more routed leads have closed.")
    try:
        result = evaluate_logged_policy(settings, store, "round_robin", None)
    except ValueError as exc:
        return [], f"No estimate against round robin yet: {exc}"
    n, rate = int(result["n"]), float(result["logged_rate"])
    half = 1.96 * (rate * (1 - rate) / max(n, 1)) ** 0.5
    dr = result["dr"]
    clip = lambda x: min(max(float(x), 0.0), 1.0)  # noqa: E731 - rates live in [0, 1]
    estimates = [(f"leadpilot ({settings.routing.policy})", rate, clip(rate - half), clip(rate + half)),
                 ("round robin (doubly robust)", clip(dr["value"]), clip(dr["low"]), clip(dr["high"]))]
    return estimates, (f"Routing chart: the logged policy's conversion rate over {n} closed decisions against "
                       "round robin's, estimated off-policy (doubly robust) from the same decisions, as "
                       "`leadpilot evaluate-policy --policy round_robin` reports; bars show 95 % intervals.")


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

