"""What routing did, as people read it: assigned vs queued, exclusions, grades, speed to lead,
each rep's load against ``max_open`` — by rep name. ``leadpilot status``, the HTML report and
the demo all show this one summary (``routing_summary``), computed from the state store, plus
the CRM's workload counts and user names when a connector is at hand.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from sync.jobs.queue import counts_for_speed, exclusion_kind, watching_since

DAILY_BUDGET = 100_000  # the API budget the fast pass's cost is stated against (a typical org's day)


def percentiles(values: Sequence[float]) -> dict[str, float | None]:
    """``{"p50": …, "p95": …}`` in seconds (None without values)."""
    if not values:
        return {"p50": None, "p95": None}
    arr = np.asarray(values, dtype=float)
    return {"p50": round(float(np.percentile(arr, 50)), 1), "p95": round(float(np.percentile(arr, 95)), 1)}


def speed_to_lead(assignments: Sequence[Any], since: datetime | None) -> list[float]:
    """Seconds from each lead's creation in the CRM to leadpilot's write of its rep as owner,
    for leads created since leadpilot started watching the org (``since``, see
    ``sync.jobs.queue.watching_since``): the backlog a first run routes is left out."""
    return [(a.written_at - a.lead_created_at).total_seconds() for a in assignments
            if a.rep_id and not a.shadow and a.superseded_at is None and a.written_at
            and counts_for_speed(a.lead_created_at, since)]


def routing_summary(settings: Any, store: Any, now: datetime, names: Mapping[str, str] | None = None,
                    capacity: Mapping[str, int | None] | None = None,
                    crm_load: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The routing part of ``status`` (JSON-ready). ``names``: owner id -> name; ``capacity``:
    rep id -> ``max_open``; ``crm_load``: rep id -> open leads the CRM says they hold."""
    names = dict(names or {})
    log = [a for a in store.assignments() if not a.shadow]
    effective = [a for a in log if a.superseded_at is None]
    queued = store.queued()
    exclusions = Counter(exclusion_kind(why) for a in log for why in a.considered.values() if why)
    since = watching_since(store)
    speeds = speed_to_lead(effective, since)
    own_open = store.rep_load()
    reps = sorted(set(own_open) | set(capacity or {}) | set(crm_load or {}))
    load = {}
    for rid in reps:
        cap = (capacity or {}).get(rid)
        crm = (crm_load or {}).get(rid) if crm_load is not None else None
        load[names.get(rid, rid)] = {"id": rid, "crm_open": crm, "leadpilot_open": own_open.get(rid, 0),
                                     "max_open": cap,
                                     "full": None if cap is None or crm is None else crm >= cap}
    return {
        "assigned": sum(1 for a in effective if a.rep_id),
        "queued": {"size": len(queued),
                   "oldest_seconds": round((now - queued[0].decided_at).total_seconds()) if queued else None,
                   "oldest_lead": queued[0].lead_id if queued else None},
        "decided_again": sum(1 for a in log if a.superseded_reason and "decided again" in a.superseded_reason),
        "exclusions": dict(exclusions.most_common()),
        "grade_mix": dict(sorted(store.count_grades().items())),
        "speed_to_lead_seconds": {**percentiles(speeds), "leads": len(speeds),
                                  "since": since.isoformat() if since else None},
        "load": load,
        "fast_pass": fast_pass_cost(settings, store, now),
    }


def fast_pass_cost(settings: Any, store: Any, now: datetime) -> dict[str, Any]:
    """The new-leads pass's API calls over the last 24 h, and a day of idle passes against a
    100,000-call daily budget (1 call a pass when nothing is new)."""
    interval = settings.schedule.new_leads_interval_minutes
    per_day = 0.0 if interval <= 0 else 24 * 60 / interval
    since = now - timedelta(days=1)
    rows = [r for r in store.recent_runs(50, kind="new_leads") if r.started_at >= since]
    calls = sum(int(sum(r.api_calls.values())) for r in rows)
    passes = sum(int(r.counts.get("passes", 0)) for r in rows)
    return {"interval_minutes": interval, "passes_last_24h": passes, "calls_last_24h": calls,
            "idle_calls_per_day": round(per_day), "share_of_100k_daily_budget": round(per_day / DAILY_BUDGET, 4)}


def print_routing(console: Any, routing: Mapping[str, Any]) -> None:
    """The routing summary as ``status`` prints it."""
    from rich.table import Table

    q = routing["queued"]
    age = "" if q["oldest_seconds"] is None else f", oldest waiting {q['oldest_seconds'] / 60:.0f} min ({q['oldest_lead']})"
    console.print(f"routing: {routing['assigned']} leads with a rep, {q['size']} queued with the fallback owner{age}; "
                  f"{routing['decided_again']} queued leads decided again")
    s = routing["speed_to_lead_seconds"]
    if s["leads"]:
        console.print(f"speed to lead (creation in the CRM to owner written, leads created since leadpilot started "
                      f"watching on {s['since'][:16]}): p50 {s['p50']:.0f} s, p95 {s['p95']:.0f} s over {s['leads']} leads")
    else:
        console.print("speed to lead: no lead created since leadpilot started watching has been routed to a rep yet")
    if routing["exclusions"]:
        console.print("reps left out, by reason: " + ", ".join(f"{k} {v}" for k, v in routing["exclusions"].items()))
    if routing["grade_mix"]:
        console.print("grade mix: " + ", ".join(f"{g} {n}" for g, n in routing["grade_mix"].items()))
    f = routing["fast_pass"]
    console.print(f"new-leads pass: every {f['interval_minutes']:g} min, {f['calls_last_24h']} API calls in the last "
                  f"24 h ({f['passes_last_24h']} passes); idle it costs {f['idle_calls_per_day']} calls a day, "
                  f"{f['share_of_100k_daily_budget']:.2%} of a 100,000-call daily budget")
    table = Table("rep", "open in the CRM", "max_open", "open from leadpilot", title="Load against max_open")
    for name, v in routing["load"].items():
        crm = "?" if v["crm_open"] is None else str(v["crm_open"])
        table.add_row(name, crm + (" (full)" if v["full"] else ""), "-" if v["max_open"] is None else str(v["max_open"]),
                      str(v["leadpilot_open"]))
    console.print(table)
