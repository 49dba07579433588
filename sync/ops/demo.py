"""``leadpilot demo``: the real daemon cycle against the sandbox CRM on simulated time.

Starts ``SandboxServer`` in-process (scenario ``skilled``, seeded, with training history),
configures leadpilot against it through the real connector (HTTPS, real client library),
trains the first model from the history, then for each simulated day runs the sync cycle
and the rewards job (retraining every ``retrain_every`` days) and advances the sandbox
clock. The summary compares the conversions achieved with a round-robin counterfactual
computed from the sandbox's ground truth: each lead has one fixed random draw, so the
lead's outcome under any other rep is known exactly (common random numbers).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from connectors.hubspot.settings import HubSpotSettings
from connectors.salesforce.settings import SalesforcePassword, SalesforceSettings
from sync.config.settings import RoutingSettings, Settings


def sandbox_settings(crm: str, info: dict[str, Any], state_dir: Path | None = None, **overrides: Any) -> Settings:
    """Settings that point leadpilot's ``crm`` connector at a running sandbox (``info``: its JSON line).

    The one place sandbox details become ``Settings``: the demo, the tests and the benchmarks use
    it. ``.env`` is ignored. ``state_dir`` holds the store and the routing file (absent unless
    written there). A dict given for the CRM's section (``salesforce={"bulk_threshold": 5}``) is
    merged into the sandbox's values; any other override replaces the setting.
    """
    ca = Path(info["ca_bundle"])
    sf = info["salesforce"]
    base: dict[str, Any] = {"crm": crm, "metrics_port": 0}
    if state_dir is not None:
        base.update(state_dir=state_dir, routing=RoutingSettings(file=state_dir / "routing.toml"))
    if crm == "salesforce":
        auth = SalesforcePassword(username=sf["username"], password=sf["password"],
                                  security_token=sf["security_token"], consumer_key=sf["client_id"],
                                  consumer_secret=sf["client_secret"])
        section: dict[str, Any] = {"auth": auth, "login_url": sf["instance_url"], "ca_bundle": ca}
        base["salesforce"] = SalesforceSettings(**{**section, **overrides.pop("salesforce", {})})
    else:
        section = {"access_token": info["hubspot"]["access_token"], "host": info["hubspot"]["host"], "ca_bundle": ca}
        base["hubspot"] = HubSpotSettings(**{**section, **overrides.pop("hubspot", {})})
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


def sandbox_env(crm: str, info: dict[str, Any], state_dir: Path) -> dict[str, str]:
    """``sandbox_settings`` as the environment variables of a ``leadpilot`` process (a worker, a
    backfill run by a benchmark): the same sandbox, the store and models in ``state_dir``."""
    env = {"LEADPILOT_CRM": crm, "LEADPILOT_STATE_DIR": str(state_dir), "LEADPILOT_METRICS_PORT": "0",
           "LEADPILOT_ROUTING__FILE": str(state_dir / "routing.toml")}
    if crm == "hubspot":
        return {**env, "LEADPILOT_HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"],
                "LEADPILOT_HUBSPOT__HOST": info["hubspot"]["host"], "LEADPILOT_HUBSPOT__CA_BUNDLE": info["ca_bundle"]}
    sf = info["salesforce"]
    return {**env, "LEADPILOT_SALESFORCE__AUTH__KIND": "password", "LEADPILOT_SALESFORCE__AUTH__USERNAME": sf["username"],
            "LEADPILOT_SALESFORCE__AUTH__PASSWORD": sf["password"],
            "LEADPILOT_SALESFORCE__AUTH__SECURITY_TOKEN": sf["security_token"],
            "LEADPILOT_SALESFORCE__AUTH__CONSUMER_KEY": sf["client_id"],
            "LEADPILOT_SALESFORCE__AUTH__CONSUMER_SECRET": sf["client_secret"],
            "LEADPILOT_SALESFORCE__LOGIN_URL": sf["instance_url"], "LEADPILOT_SALESFORCE__CA_BUNDLE": info["ca_bundle"]}


CYCLES_PER_DAY = 2  # the demo syncs at 09:00 and 21:00 UTC (the daemon: every 5 minutes, new leads every minute)
# The demo's routing file: two teams by territory and hours, one rep out of office for a week,
# one with a small max_open (measured against what the CRM says each rep holds).
AMERICAS = ("United States", "Canada", "Brazil")
AMERICAS_TEAM = ("Blake Morgan", "Carmen Ruiz", "Dmitri Volkov")
SMALL_CAPACITY = ("Grace Okafor", 25)
OUT_OF_OFFICE = ("Elena Rossi", 20, 27)  # days after the start


def write_demo_routing(path: Path, world: Any, start: Any, crm: str) -> None:
    """The demo's routing file: Americas leads to a New York team (08:00-18:00 local), all others
    to a London team (08:00-18:00), one London rep out of office days 20-27, one with max_open 25."""
    from sandbox.hubspot.props import hs_id
    from sandbox.world.leads import COUNTRIES

    iso = {"United Kingdom": "GB", "Germany": "DE"}  # names or ISO codes: both match
    others = ", ".join(f'"{iso.get(c, c)}"' for c in COUNTRIES if c not in AMERICAS)
    queue = world.queue_id if crm == "salesforce" else hs_id(world.queue_id)
    countries = ", ".join(f'"{c}"' for c in AMERICAS)
    lines = ['# leadpilot demo routing: territories, capacity and hours', 'unlisted_reps = "ignore"',
             "[fallback]", f'owner = "{queue}"', "",
             "[territories.americas]", f"country = [{countries}]", "",
             "[territories.rest-of-world]", f"country = [{others}]", ""]
    ooo_from = (start + timedelta(days=OUT_OF_OFFICE[1])).date().isoformat()
    ooo_to = (start + timedelta(days=OUT_OF_OFFICE[2])).date().isoformat()
    for rep in sorted(world.reps.values(), key=lambda r: r.name):
        us = rep.name in AMERICAS_TEAM
        lines += ["[[reps]]", f'email = "{rep.email}"', f'name = "{rep.name}"',
                  f'territory = "{"americas" if us else "rest-of-world"}"',
                  f'timezone = "{"America/New_York" if us else "Europe/London"}"',
                  # until 18:00: the 21:00 UTC sync is 17:00 in New York once daylight saving starts
                  # (8 March), and a team whose hours end at 17:00 would never see its queue drain
                  'working_hours = "08:00-18:00"']
        if rep.name == SMALL_CAPACITY[0]:
            lines.append(f"max_open = {SMALL_CAPACITY[1]}")
        if rep.name == OUT_OF_OFFICE[0]:
            lines.append(f'out_of_office = ["{ooo_from}..{ooo_to}"]')
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def run_demo(crm: str = "salesforce", days: int = 90, seed: int = 0, history: int = 1000,
             out_dir: Path | str = Path("out/demo"), retrain_every: int = 30, quiet: bool = False) -> dict[str, Any]:
    """Run the demo; returns the summary (also rendered as HTML, path under ``report``)."""
    import shutil

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from sandbox.hubspot.api import state as hubspot_state
    from sandbox.server import SandboxServer
    from sync.jobs.cycle import run_cycle
    from sync.jobs.retrain import run_retrain
    from sync.jobs.rewards import run_rewards
    from sync.ops.logs import configure_logging
    from sync.wiring.connector import make_connector
    from sync.wiring.deps import build_deps

    console = Console(quiet=quiet, stderr=True)
    configure_logging("WARNING", "text")
    out = Path(out_dir)
    state = out / "state"
    shutil.rmtree(state, ignore_errors=True)  # a demo always starts from an empty deployment
    t0 = time.monotonic()
    totals: Counter[str] = Counter()
    with SandboxServer(seed=seed, leads=history, scenario="skilled") as srv:
        clock = srv.store.clock.now

        def sleep(seconds: float) -> None:  # a client's back-off waits in simulated time
            srv.store.clock.advance(timedelta(seconds=seconds))

        # HubSpot's ten-second burst window on the same simulated time as the clients' waits: a 429
        # waited out by `sleep` is over in the sandbox too (on real time it never was: every sync
        # then failed on a 429 once the queue grew, and the queued leads never drained)
        hubspot_state(srv.ctx).monotonic = lambda: clock().timestamp()
        state.mkdir(parents=True, exist_ok=True)
        write_demo_routing(state / "routing.toml", srv.world, srv.store.clock.now(), crm)
        settings = sandbox_settings(crm, srv.info, state, routing=RoutingSettings(
            file=state / "routing.toml", seed=seed))
        connector = make_connector(settings, now=clock, sleep=sleep)
        connector.ensure_fields()
        deps = build_deps(settings, connector=connector, clock=clock)
        deps.sleep = sleep
        start = clock()

        def advance_to(moment: datetime) -> None:
            """The world moves to the next scheduled sync at its set time: a client's back-off waits
            (simulated, above) must not push the syncs later day after day (HubSpot's 429 waits had
            moved the 21:00 sync past the New York team's hours within two months)."""
            ahead = moment - clock()
            if ahead > timedelta(0):
                srv.advance(ahead / timedelta(days=1))

        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, disable=quiet) as progress:
            task = progress.add_task(f"training the first model from {history} leads of history", total=days)
            trained = run_retrain(deps)
            for day in range(days):
                progress.update(task, description=f"day {day + 1}/{days}: sync + rewards "
                                f"(model {deps.scorers.version})")
                for half in range(CYCLES_PER_DAY):  # 09:00 and 21:00 UTC: each sees the other's queue
                    advance_to(start + timedelta(days=day + half / CYCLES_PER_DAY))
                    rep = run_cycle(deps)
                    totals.update(rep.counts())
                rew = run_rewards(deps)
                totals["rewards_applied"] += rew.applied
                if retrain_every and day and day % retrain_every == 0:
                    progress.update(task, description=f"day {day + 1}/{days}: retraining")
                    run_retrain(deps)
                progress.advance(task)
            advance_to(start + timedelta(days=days))
        srv.world.observe()  # outcomes of the last day's assignments
        summary, data = _summarise(srv, deps, crm, seed, days, history, totals, trained, start)
    from sync.ops.report import render_report

    summary["report"] = str(render_report(data, out))
    summary["seconds"] = round(time.monotonic() - t0, 1)
    _print(console, summary)
    return summary


def _summarise(srv: Any, deps: Any, crm: str, seed: int, days: int, history: int, totals: Counter[str],
               trained: Any, start: Any) -> tuple[dict[str, Any], Any]:
    from sandbox.hubspot.props import hs_id
    from sync.jobs.queue import exclusion_kind, watching_since
    from sync.ops.report import ReportData
    from sync.ops.routing_view import percentiles, speed_to_lead

    def cid(canonical: str) -> str:
        return canonical if crm == "salesforce" else hs_id(canonical)

    world = srv.world
    lead_ids = {cid(lid): lid for lid in world.truth}
    rep_ids = {cid(uid): uid for uid in world.reps}
    logged = [a for a in deps.store.assignments() if not a.shadow and a.lead_id in lead_ids]
    decisions = [a for a in deps.store.assignments(effective=True) if a.rep_id and not a.shadow and a.lead_id in lead_ids]
    reps = sorted(deps.router.router.reps)
    pointer = 0
    learned = rr = exp_learned = exp_rr = exp_oracle = 0.0
    by_day: dict[int, list[float]] = {}
    for a in decisions:
        truth = world.truth[lead_ids[a.lead_id]]
        eligible = [r for r in reps if a.considered.get(r, "not considered") is None] or reps
        while reps[pointer % len(reps)] not in eligible:  # round robin skips reps who cannot take it
            pointer += 1
        rr_rep = reps[pointer % len(reps)]
        pointer += 1
        p_ours = world.p_convert(lead_ids[a.lead_id], rep_ids[a.rep_id])
        p_rr = world.p_convert(lead_ids[a.lead_id], rep_ids[rr_rep])
        learned += truth.u[0] < p_ours
        rr += truth.u[0] < p_rr
        exp_learned += p_ours
        exp_rr += p_rr
        exp_oracle += max(world.p_convert(lead_ids[a.lead_id], rep_ids[r]) for r in eligible if r in rep_ids)
        by_day[(a.decided_at - start).days] = [learned, rr]
    states = deps.store.lead_state(a.lead_id for a in decisions)
    y_true = [int(world.truth[lead_ids[a.lead_id]].u[0] < world.p_convert(lead_ids[a.lead_id], rep_ids[a.rep_id]))
              for a in decisions]
    y_prob = [float(states[a.lead_id].score or 0.0) if a.lead_id in states else 0.0 for a in decisions]
    auc = _auc(y_true, y_prob)
    leads = sum(deps.store.count_leads().values())
    api = deps.connector.api_usage()
    api_total = sum(int(v) for v in api.values())
    from sync.wiring.scorers import champion_model

    champion = champion_model(deps.settings, deps.store)  # the registry's, as `leadpilot status` shows it
    per_rep = Counter(a.rep_id for a in decisions)
    names = {cid(uid): r.name for uid, r in world.reps.items()}
    summary: dict[str, Any] = {
        "crm": crm, "seed": seed, "days": days, "history_leads": history,
        "leads": leads, "scored": int(totals["scored"]), "flagged": int(totals["flagged"]),
        "assigned": len(decisions), "parked": len(deps.store.list_parked()),
        "conversions": int(learned), "conversions_round_robin_counterfactual": int(rr),
        "expected_conversions": round(exp_learned, 1),
        "expected_conversions_round_robin": round(exp_rr, 1),
        # The best any router could expect: every lead to the eligible rep most likely to convert it.
        "expected_conversions_oracle": round(exp_oracle, 1),
        "share_of_oracle_uplift": round((exp_learned - exp_rr) / (exp_oracle - exp_rr), 4) if exp_oracle > exp_rr else None,
        "uplift_vs_round_robin": round(learned / rr - 1, 4) if rr else None,
        "rewards_applied": int(totals["rewards_applied"]) + int(totals["disqualified"]),
        "early_rewards": {"disqualified": int(totals["disqualified"]), "converted": int(totals["converted"])},
        "api_calls": api, "api_calls_per_1000_leads": round(1000 * api_total / leads, 1) if leads else None,
        "roc_auc": auc, "model": champion[0] if champion else "cold start",
        "model_validation": {k: trained.metrics.get(k) for k in ("roc_auc", "pr_auc", "brier", "ece",
                                                                  "lift_top_decile") if k in trained.metrics},
        "assignments_per_rep": {names.get(r, r): n for r, n in sorted(per_rep.items())},
        # leads that waited with the fallback owner (none of their reps could take them then);
        # each was decided again until one could: queued_at_end still wait
        "queued": sum(1 for a in logged if a.rep_id is None),
        "queued_at_end": len(deps.store.queued()),
        "exclusions": dict(Counter(exclusion_kind(w) for a in logged for w in a.considered.values() if w).most_common()),
        # leads created since leadpilot started watching (the routed history backlog is left out)
        "speed_to_lead_seconds": percentiles(speed_to_lead(logged, watching_since(deps.store))),
    }
    days_sorted = sorted(by_day)
    data = ReportData(
        title=f"leadpilot demo ({crm}, {days} simulated days, seed {seed})",
        summary={**{k: v for k, v in summary.items() if not isinstance(v, dict)},
                 "exclusions (reps left out, by reason)": ", ".join(f"{k}: {v}" for k, v in summary["exclusions"].items()),
                 "speed to lead p50 / p95 (s), leads created since leadpilot started": "{p50} / {p95}".format(**summary["speed_to_lead_seconds"])},
        y_true=y_true, y_prob=y_prob, days=days_sorted,
        conversions_learned=[by_day[d][0] for d in days_sorted],
        conversions_round_robin=[by_day[d][1] for d in days_sorted],
        rep_assigned={names.get(r, r): n for r, n in per_rep.items()},
        rep_open={names.get(r, r): n for r, n in deps.store.rep_load().items()},
        notes=["Round robin is the same leads, same moments, rotated over the eligible reps; its conversions use "
               "the sandbox's ground truth with each lead's own random draw (common random numbers).",
               "ROC-AUC: the score written to the CRM against whether the routed lead converted.",
               f"The demo syncs {CYCLES_PER_DAY} times a simulated day (09:00 and 21:00 UTC), so a lead waits "
               "hours for its owner here; the daemon syncs every 5 minutes and passes over new leads every minute "
               "(speed to lead within 90 s at p95)."])
    return summary, data


def _auc(y: list[int], p: list[float]) -> float | None:
    if len(set(y)) < 2:
        return None
    from sklearn.metrics import roc_auc_score

    return round(float(roc_auc_score(y, p)), 4)


def _print(console: Any, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table("", "", title="leadpilot demo summary")
    for k, v in summary.items():
        table.add_row(k, ", ".join(f"{a}: {b}" for a, b in v.items()) if isinstance(v, dict) else str(v))
    console.print(table)
    console.print(f"report: {summary['report']}")
