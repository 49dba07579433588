"""A backfill spread over `leadpilot worker` processes on PostgreSQL: throughput per worker count,
failover time, peak memory per worker.

    python benchmarks/scale_out.py --workers 1,2 --leads 20000 --json OUT [--backend transformer|static]
                                   [--threads 1]

For each worker count W: a fresh sandbox with ``--leads`` old leads (``sandbox.generated``) plus
the world's history, a fresh PostgreSQL schema (``LEADPILOT_TEST_PG_URL`` or
``postgresql://postgres@127.0.0.1:5432/test``), the model trained once on that history (copied
into each run's state directory; each run starts with an empty embedding cache), W real worker
processes, then ``leadpilot backfill --defer --json`` waits until every chunk is done.
``leads_per_s`` = leads / the deferring command's wall time (the workers log in and load the
model within it); ``peak_rss_mb`` is each worker's high-water mark (``VmHWM``), the largest
reported; ``speedup`` = the largest W's rate / one worker's. Each worker runs with
``--threads`` CPU threads (``leadpilot worker --threads``, default 1: one worker per core).

Failover: two workers with heartbeat 1 s, stalled after 5 s, checked every 2 s (``worker
--heartbeat-seconds 1 --stalled-after-seconds 5 --stalled-check-seconds 2``); once a chunk job
runs, its worker is killed with SIGKILL, and ``failover_seconds`` is the real time until the
other worker starts that same job again (the bound is stalled-after + one check period).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import backfill as single_machine  # noqa: E402  (benchmarks/backfill.py: training, the encoder backends)

from benchmarks._out import write_json  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sync.ops.demo import sandbox_env  # noqa: E402
from sync.store import Store  # noqa: E402

FAST_FAILOVER = ["--heartbeat-seconds", "1", "--stalled-after-seconds", "5", "--stalled-check-seconds", "2"]


class Schema:
    """A fresh PostgreSQL schema for one run, dropped afterwards."""

    def __init__(self, base: str) -> None:
        self.base, self.name = sa.make_url(base), f"lp_bench_{uuid.uuid4().hex[:12]}"
        self.admin = sa.create_engine(self.base.set(drivername="postgresql+psycopg"))

    def __enter__(self) -> str:
        with self.admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{self.name}"'))
        url = self.base.update_query_dict({"options": f"-csearch_path={self.name}"})
        return url.render_as_string(hide_password=False)

    def __exit__(self, *exc: object) -> None:
        with self.admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        self.admin.dispose()


def _hwm_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmHWM:\s+(\d+) kB", text)
    return int(found.group(1)) / 1024 if found else 0.0


class Workers:
    """``count`` ``leadpilot worker`` processes with ``env``; logs in ``logs``."""

    def __init__(self, count: int, env: dict[str, str], logs: Path, extra: list[str]) -> None:
        self.procs: list[tuple[subprocess.Popen[bytes], Path]] = []
        for i in range(count):
            log = logs / f"worker{i}.log"
            with log.open("wb") as out:
                self.procs.append((subprocess.Popen(
                    [sys.executable, "-m", "sync.cli", "worker", "--name", f"bench{i}", *extra],
                    cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT), log))

    def peak_rss_mb(self) -> list[float]:
        return [round(_hwm_mb(p.pid), 1) for p, _ in self.procs]

    def stop(self) -> None:
        for p, _ in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in self.procs:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()


def _setup(leads: int, history: int, seed: int, trained: Path, tmp: Path, store_url: str,
           srv: SandboxServer) -> dict[str, str]:
    """A run's state directory (the trained model, an empty embedding cache) and environment."""
    from sync.ops.demo import sandbox_settings
    from sync.wiring.connector import make_connector

    state = tmp / "state"
    shutil.copytree(trained, state, symlinks=True,
                    ignore=shutil.ignore_patterns("encoder-cache.sqlite*", "leadpilot.db*"))
    make_connector(sandbox_settings("salesforce", srv.info, state)).ensure_fields()
    Store.open(store_url, crm="salesforce").close()  # migrations, the queue's schema included
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPILOT_") and k != "NOTIFY_SOCKET"}
    env.update(sandbox_env("salesforce", srv.info, state), LEADPILOT_STORE_URL=store_url, LEADPILOT_LOG_LEVEL="INFO",
               LEADPILOT_SCHEDULE__SYNC_INTERVAL_MINUTES="60", LEADPILOT_SCHEDULE__REWARDS_INTERVAL_MINUTES="60",
               LEADPILOT_SCHEDULE__NEW_LEADS_INTERVAL_MINUTES="0")
    return env


def throughput(workers: int, leads: int, history: int, seed: int, trained: Path, pg: str,
               chunk_leads: int, backend: str, threads: int = 1) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leadpilot-scale-") as raw, Schema(pg) as url, \
            SandboxServer(seed=seed, leads=history, generated_leads=leads) as srv:
        tmp = Path(raw)
        env = _setup(leads, history, seed, trained, tmp, url, srv)
        env["LEADPILOT_SCORING__ENCODER_BACKEND"] = single_machine.BACKENDS[backend]
        pool = Workers(workers, env, tmp, ["--threads", str(threads)])
        try:
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "sync.cli", "backfill", "--defer", "--json",
                                   "--chunk-leads", str(chunk_leads), "--batch-leads", str(chunk_leads)],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            rss = pool.peak_rss_mb()
        finally:
            pool.stop()
        if done.returncode != 0:
            logs = "\n".join(log.read_text(errors="replace")[-2000:] for _p, log in pool.procs)
            raise SystemExit(f"backfill --defer exited {done.returncode}:\n{done.stderr[-3000:]}\n{logs}")
        progress = json.loads(done.stdout)["progress"]
    total = leads + history
    return {"leads_per_s": round(total / seconds, 1), "seconds": round(seconds, 1), "peak_rss_mb": max(rss),
            "peak_rss_mb_each": rss, "chunks": progress["chunks_total"], "leads_read": progress["leads_done"]}


def failover(leads: int, history: int, seed: int, trained: Path, pg: str, chunk_leads: int,
             backend: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leadpilot-failover-") as raw, Schema(pg) as url, \
            SandboxServer(seed=seed, leads=history, generated_leads=leads) as srv:
        tmp = Path(raw)
        env = _setup(leads, history, seed, trained, tmp, url, srv)
        env["LEADPILOT_SCORING__ENCODER_BACKEND"] = single_machine.BACKENDS[backend]
        pool = Workers(2, env, tmp, FAST_FAILOVER)
        engine = sa.create_engine(sa.make_url(url).set(drivername="postgresql+psycopg"))
        deferring = subprocess.Popen([sys.executable, "-m", "sync.cli", "backfill", "--defer", "--json",
                                      "--chunk-leads", str(chunk_leads), "--batch-leads", str(chunk_leads)],
                                     cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            job, victim = _running_job(pool)
            victim_proc = next(p for p, _ in pool.procs if p.pid == victim)
            victim_proc.send_signal(signal.SIGKILL)
            killed_at = time.perf_counter()
            survivor = next(log for p, log in pool.procs if p.pid != victim)
            again = re.compile(rf"job {job} backfill chunk \d+ \(org \w+\) started in pid (\d+)")
            requeued = None
            while time.perf_counter() - killed_at < 300:
                if requeued is None:
                    with engine.connect() as conn:
                        status = conn.execute(sa.text("SELECT status FROM procrastinate_jobs WHERE id = :id"),
                                              {"id": job}).scalar()
                    if status != "doing":
                        requeued = time.perf_counter() - killed_at
                if any(int(pid) != victim for pid in again.findall(survivor.read_text(errors="replace"))):
                    break
                time.sleep(0.1)
            else:
                raise SystemExit("the killed worker's job was not resumed within 300 s")
            seconds = time.perf_counter() - killed_at
            deferring.wait(timeout=3600)
            with engine.connect() as conn:
                states = dict(conn.execute(sa.text("SELECT status, count(*) FROM procrastinate_jobs "
                                                   "WHERE task_name = 'leadpilot.backfill_chunk' GROUP BY 1")).all())
        finally:
            if deferring.poll() is None:
                deferring.kill()
            pool.stop()
            engine.dispose()
    return {"failover_seconds": round(seconds, 1),
            "requeued_seconds": None if requeued is None else round(requeued, 1),
            "failover_note": "requeued: the dead worker's job back in the queue (stalled-job recovery); failover: "
                             "the other worker starting it, after the chunk it was running",
            "job_states_after": states,
            "settings": "worker --heartbeat-seconds 1 --stalled-after-seconds 5 --stalled-check-seconds 2"}


def _running_job(pool: Workers) -> tuple[int, int]:
    """(job id, worker pid) of the first chunk job a worker logs as started."""
    started = re.compile(r"job (\d+) backfill chunk \d+ \(org \w+\) started in pid (\d+)")
    deadline = time.perf_counter() + 600
    while time.perf_counter() < deadline:
        for proc, log in pool.procs:
            found = started.search(log.read_text(errors="replace"))
            if found and int(found.group(2)) == proc.pid:
                time.sleep(1.0)  # well inside its chunk
                return int(found.group(1)), proc.pid
        time.sleep(0.1)
    raise SystemExit("no backfill chunk started within 600 s")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2", help="worker counts to measure, e.g. 1,2")
    ap.add_argument("--leads", type=int, default=20_000)
    ap.add_argument("--history", type=int, default=1000)
    ap.add_argument("--chunk-leads", type=int, default=0, help="default: leads / 10 (enough chunks to share)")
    ap.add_argument("--backend", choices=sorted(single_machine.BACKENDS), default="transformer",
                    help="the encoder (default: the transformer, leadpilot's default backend)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per worker (leadpilot worker --threads)")
    ap.add_argument("--pg-url", default=os.environ.get("LEADPILOT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--static-cache", type=Path, default=Path.home() / ".cache" / "leadpilot" / "static-encoder")
    ap.add_argument("--no-failover", action="store_true")
    ap.add_argument("--failover-only", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    counts = sorted({int(x) for x in args.workers.split(",") if x.strip()})
    if not counts or counts[0] < 1:
        ap.error("--workers takes counts of 1 or more, e.g. 1,2")
    chunk = args.chunk_leads or max(1, (args.leads + args.history) // 10)
    result: dict[str, Any] = {"leads": args.leads + args.history, "backend": args.backend, "chunk_leads": chunk,
                              "threads_per_worker": args.threads, "workers": {}}
    with tempfile.TemporaryDirectory(prefix="leadpilot-scale-train-") as raw:
        trained = Path(raw) / "state"
        trained.mkdir()
        args.static_cache.mkdir(parents=True, exist_ok=True)
        (trained / "static-encoder").symlink_to(args.static_cache.resolve(), target_is_directory=True)
        result.update(single_machine.train(args.history, args.seed, trained, args.backend))
        for w in [] if args.failover_only else counts:
            result["workers"][str(w)] = throughput(w, args.leads, args.history, args.seed, trained, args.pg_url,
                                                   chunk, args.backend, args.threads)
            print(f"{w} worker(s): {result['workers'][str(w)]}", file=sys.stderr)
        if result["workers"]:
            first, last = result["workers"][str(counts[0])], result["workers"][str(counts[-1])]
            result["speedup"] = round(last["leads_per_s"] / first["leads_per_s"], 2)
        if not args.no_failover:
            result.update(failover(max(2000, args.leads // 5), args.history, args.seed, trained, args.pg_url,
                                   max(200, chunk // 5), args.backend))
    result["machine"] = {"cpus": os.cpu_count()}
    print(write_json(result, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
