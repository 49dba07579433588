"""Three `leadpilot worker` processes serving two orgs (a Salesforce-dialect and a HubSpot-dialect
sandbox, each in its own process) from one PostgreSQL, killed with -9 and restarted.

First the failover: the worker running org ``acme``'s sync is killed, and the org's next sync
starts on another worker within two sync intervals. The bound is asserted on the schedule's own
clock (how many of the org's sync periods began between the kill and the take-over, read from
the database's clock, not the test's); the real seconds are printed and recorded as the test's
``failover_seconds`` property. Then ten kills of a seeded random worker at seeded random moments,
each restarted, while both sandboxes' simulated clocks advance. Afterwards, for each org: every
open lead scored, one decision per lead, the CRM's owner (and the sandbox's record of who owned
the lead when its outcome was drawn) is that decision, each reward applied once, nothing parked.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import sqlalchemy as sa

from allocation.ledger import OPEN
from sandbox.hubspot.props import hs_id
from sync.store.engine import create_store_engine, org_schema

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
KILLS = 10
SYNC_SECONDS = 10  # the sync interval; the failover must start the org's next sync within two
ORGS = {"acme": "salesforce", "globex": "hubspot"}


def _admin(info: dict, method: str, route: str) -> Any:
    resp = requests.request(method, f"{info['admin_url']}/{route}", verify=info["ca_cert"], timeout=30)
    resp.raise_for_status()
    return resp.json()


def _org_file(crm: str, info: dict, tmp_path: Path) -> str:
    if crm == "salesforce":
        sf = info["salesforce"]
        crm_lines = {"SALESFORCE__AUTH__KIND": "password", "SALESFORCE__AUTH__USERNAME": sf["username"],
                     "SALESFORCE__AUTH__PASSWORD": sf["password"],
                     "SALESFORCE__AUTH__SECURITY_TOKEN": sf["security_token"],
                     "SALESFORCE__AUTH__CONSUMER_KEY": sf["client_id"],
                     "SALESFORCE__AUTH__CONSUMER_SECRET": sf["client_secret"],
                     "SALESFORCE__LOGIN_URL": sf["instance_url"], "SALESFORCE__CA_BUNDLE": info["ca_bundle"]}
    else:
        crm_lines = {"HUBSPOT__ACCESS_TOKEN": info["hubspot"]["access_token"], "HUBSPOT__HOST": info["hubspot"]["host"],
                     "HUBSPOT__CA_BUNDLE": info["ca_bundle"]}
    values = {"CRM": crm, **crm_lines, "ROUTING__FILE": str(tmp_path / "no-routing.toml"),
              # The queue and its failover are under test, not the model: the org's base rate scores.
              "SCORING__MIN_HISTORY": "100000",
              "SCHEDULE__SYNC_INTERVAL_MINUTES": str(SYNC_SECONDS / 60),
              "SCHEDULE__NEW_LEADS_INTERVAL_MINUTES": "0.05", "SCHEDULE__REWARDS_INTERVAL_MINUTES": "0.1"}
    return "".join(f"LEADPILOT_{k}={v}\n" for k, v in values.items())


class Workers:
    """Three worker processes, each with its own log; ``kill(i)`` -9s one and starts it again."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs, self.procs = env, logs, [None, None, None]
        self.starts = [0, 0, 0]
        for i in range(3):
            self.start(i)

    def start(self, i: int) -> None:
        self.starts[i] += 1
        log = self.logs / f"worker{i}.{self.starts[i]}.log"
        with log.open("wb") as out:
            self.procs[i] = subprocess.Popen(  # type: ignore[call-overload]
                [sys.executable, "-m", "sync.cli", "worker", "--name", f"w{i}", "--heartbeat-seconds", "1",
                 "--stalled-after-seconds", "5", "--stalled-check-seconds", "1"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    def kill(self, i: int) -> None:
        proc = self.procs[i]
        proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        proc.wait(timeout=30)  # type: ignore[union-attr]
        self.start(i)

    def index_of(self, pid: int) -> int | None:
        return next((i for i, p in enumerate(self.procs) if p is not None and p.pid == pid), None)

    def text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in sorted(self.logs.glob("worker*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc is None:
                continue
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def _wait(what: str, check, workers: Workers, seconds: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{workers.text()[-6000:]}")


def _rows(engine: sa.Engine, sql: str, **params: object) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def _db_now(engine: sa.Engine) -> datetime:
    """The database's clock: the queue's events are stamped with it."""
    return _rows(engine, "SELECT now()")[0][0]  # type: ignore[no-any-return]


def _failover(engine: sa.Engine, workers: Workers) -> tuple[float, int]:
    """Kill the worker running acme's sync; (real seconds, sync periods) until its next sync starts."""
    def running() -> tuple[int, int] | None:
        try:  # the workers create the queue's tables as they start (nothing is migrated by hand)
            doing = _rows(engine, "SELECT id FROM procrastinate_jobs WHERE task_name = 'leadpilot.sync' "
                                  "AND args->>'org' = 'acme' AND status = 'doing'")
        except sa.exc.ProgrammingError:
            return None
        for row in doing:
            found = re.search(rf"job {row.id} sync \(org acme, period \d+\) started in pid (\d+)", workers.text())
            if found and workers.index_of(int(found.group(1))) is not None:
                return row.id, int(found.group(1))
        return None

    job_id, pid = _wait("acme's sync running on a worker", running, workers, 180)
    victim = workers.index_of(pid)
    assert victim is not None
    workers.kill(victim)
    killed_at = _db_now(engine)
    started = _wait("acme's next sync on another worker", lambda: _rows(
        engine, "SELECT e.at, j.id FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
                "WHERE e.type = 'started' AND j.task_name = 'leadpilot.sync' AND j.args->>'org' = 'acme' "
                "AND e.at > :k ORDER BY e.at LIMIT 1", k=killed_at), workers, 120)[0]
    # (the job retried after the kill, or a later period's): its start logged by a live worker
    _wait(f"job {started.id}'s start in a live worker's log", lambda: {int(p) for p in re.findall(
        rf"job {started.id} sync \(org acme, period \d+\) started in pid (\d+)", workers.text())} - {pid}, workers, 30)
    # Sync periods of the org's schedule that began after the kill, up to the take-over.
    periods = int(started.at.timestamp() // SYNC_SECONDS) - int(killed_at.timestamp() // SYNC_SECONDS)
    return (started.at - killed_at).total_seconds(), periods


def _check_org(name: str, crm: str, info: dict, orgs_dir: Path) -> None:
    from sync.config.orgs import org_settings
    from sync.jobs.cycle import run_cycle
    from sync.jobs.rewards import run_rewards
    from sync.wiring.deps import build_deps

    deps = build_deps(org_settings(name, orgs_dir))
    try:
        assert deps.store.list_parked() == []  # no fault was injected: nothing had reason to park
        final = run_cycle(deps)  # picks up what arrived after the last worker cycle
        assert final.ok and final.stopped is None, (name, final.error, final.stopped)
        run_rewards(deps)
        leads = {lead.id: lead for lead in deps.connector.iter_changed_leads(datetime(2000, 1, 1, tzinfo=UTC))}
        unscored = [lid for lid, lead in leads.items()
                    if lead.stage is None and lead.written.get("score") is None]  # closed leads are not rewritten
        assert unscored == [], (name, len(leads), unscored[:5])
        assert deps.store.list_parked() == []
        decisions = deps.store.assignments()
        assert decisions and len({a.lead_id for a in decisions}) == len(decisions)  # one decision per lead
        owners = deps.connector.get_owners([a.lead_id for a in decisions])
        assert all(owners[a.lead_id] == a.rep_id for a in decisions if a.written_at is not None), name
        # The sandbox's own record: who owned each lead when its outcome was drawn — never a second write.
        _admin(info, "POST", "observe")  # the world records the owner of every lead a rep now holds
        truth = {t["lead_id"]: t["assigned_rep"] for t in _admin(info, "GET", "ground-truth")["leads"]}
        if crm == "hubspot":
            truth = {hs_id(k): (hs_id(v) if v else v) for k, v in truth.items()}
        drawn = [a for a in decisions if a.rep_id and truth.get(a.lead_id)]
        assert drawn and all(truth[a.lead_id] == a.rep_id for a in drawn), (name, len(drawn))
        # No double write (the sandbox's per-record counters): no lead's owner was written more often
        # than leadpilot decided for it, however the kills fell (a retried job re-checks the owner).
        written = _admin(info, "GET", "writes?object=Lead")["records"]
        if crm == "hubspot":
            written = {hs_id(k): v for k, v in written.items()}
        per_lead = Counter(a.lead_id for a in decisions)
        doubled = {lid: (c["owner"], per_lead[lid]) for lid, c in written.items() if c["owner"] > per_lead[lid]}
        assert doubled == {}, (name, doubled)
        assert sum(c["owner"] for c in written.values()) > 0, name  # the counters saw leadpilot's writes
        rewarded = [a for a in decisions if a.reward_applied_at is not None]
        _, status, _, _ = deps.router.router.ledger.arrays()
        assert int(np.sum(status != OPEN)) == len(rewarded), name  # each reward reached the policy once
        assert run_rewards(deps).applied == 0
    finally:
        deps.store.close()


def test_given_three_workers_and_two_orgs_when_killed_then_failover_within_two_syncs_and_nothing_lost_or_doubled(
        tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, record_property: Any) -> None:
    pytest.importorskip("procrastinate", reason="the workers' queue: pip install 'leadpilot[workers]'")
    rng = random.Random(18)
    sandboxes = [subprocess.Popen([sys.executable, "-m", "sync.cli", "sandbox", "serve", "--seed", str(seed),
                                   "--leads", "60"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
                 for seed in (11, 12)]
    engine = create_store_engine(postgres_url)
    workers: Workers | None = None
    try:
        infos = {name: json.loads(box.stdout.readline())  # type: ignore[union-attr]
                 for name, box in zip(ORGS, sandboxes, strict=True)}
        orgs_dir = tmp_path / "orgs"
        orgs_dir.mkdir()
        shared = {"LEADPILOT_ORGS_DIR": str(orgs_dir), "LEADPILOT_STORE_URL": postgres_url,
                  "LEADPILOT_STATE_DIR": str(tmp_path / "state"), "LEADPILOT_METRICS_PORT": "0"}
        for key in [k for k in os.environ if k.upper().startswith("LEADPILOT_")]:
            monkeypatch.delenv(key)
        for key, value in shared.items():
            monkeypatch.setenv(key, value)
        from sync.config.orgs import org_settings
        from sync.wiring.connector import make_connector

        for name, crm in ORGS.items():
            (orgs_dir / f"{name}.env").write_text(_org_file(crm, infos[name], tmp_path), encoding="utf-8")
            make_connector(org_settings(name, orgs_dir)).ensure_fields()  # `leadpilot init-crm --org`
        env = {**os.environ, **shared}
        env.pop("NOTIFY_SOCKET", None)
        workers = Workers(env, tmp_path)

        seconds, periods = _failover(engine, workers)
        print(f"failover: acme's next sync started on another worker {seconds:.1f} s after the kill "
              f"({periods} sync period(s) of {SYNC_SECONDS} s)")
        record_property("failover_seconds", round(seconds, 2))
        assert periods <= 2, (seconds, periods)

        for _ in range(KILLS):
            for info in infos.values():
                _admin(info, "POST", f"advance?days={rng.choice([0.25, 0.5, 1])}")
            time.sleep(rng.uniform(0.3, 2.5))  # a seeded moment, anywhere in the workers' jobs
            workers.kill(rng.randrange(3))
        # Each org's jobs went on after the last kill: a sync of each finished on a live worker.
        after = _db_now(engine)
        for name in ORGS:
            _wait(f"a sync of {name} after the kills", lambda name=name: _rows(
                engine, "SELECT 1 FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
                        "WHERE e.type = 'succeeded' AND j.task_name = 'leadpilot.sync' AND j.args->>'org' = :o "
                        "AND e.at > :t", o=name, t=after), workers, 120)
        workers.stop()
        # Never two jobs of one org at once, however the kills fell: its finished runs do not overlap
        # (a killed run never finishes; the next one closes it as interrupted).
        for name in ORGS:
            schema = org_schema(postgres_url, "org_" + name)
            overlapping = _rows(engine, f'SELECT a.kind, a.owner, a.started_at, a.finished_at, b.kind, b.owner, '
                                        f'b.started_at, b.finished_at FROM "{schema}".runs a JOIN "{schema}".runs b '
                                        "ON a.id < b.id WHERE a.status = 'ok' AND b.status = 'ok' "
                                        # the new-leads pass keeps one row per day, over all its passes
                                        "AND 'new_leads' NOT IN (a.kind, b.kind) "
                                        "AND a.started_at < b.finished_at AND b.started_at < a.finished_at")
            locks = _rows(engine, "SELECT task_name, lock, queueing_lock, args->>'org', count(*) FROM procrastinate_jobs "
                                  "GROUP BY 1, 2, 3, 4")
            assert overlapping == [], "\n".join(map(str, [name, *overlapping, *locks]))
        for name, crm in ORGS.items():
            _check_org(name, crm, infos[name], orgs_dir)
    finally:
        if workers is not None:
            workers.stop()
        for box in sandboxes:
            box.send_signal(signal.SIGTERM)
            box.wait(timeout=30)
        with engine.begin() as conn:  # the fixture drops its schema; the orgs' sit beside it
            for name in ORGS:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{org_schema(postgres_url, "org_" + name)}" CASCADE')
        engine.dispose()
