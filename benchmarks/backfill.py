"""A first-day backfill of a big Salesforce org: `leadpilot backfill` against the sandbox.

    python benchmarks/backfill.py --leads 1000000 --json OUT [--backend static|transformer]
                                  [--extrapolate-to 1000000]

The sandbox (in this process) serves ``--leads`` old leads generated on demand
(``sandbox.generated``: constant memory) plus ``--history`` leads of the simulated world with
their outcomes. A model is trained on that history with the chosen encoder backend (the static
one is distilled once into ``--static-cache``), then ``leadpilot backfill --json`` runs as its own
process, exactly as an admin would run it: Bulk API 2.0 query per chunk, read page by page,
scored, only changed leads written (Bulk API 2.0 ingest above the threshold).

Measured on the backfill process: wall ``seconds`` (start-up and model load included),
``leads_per_s``, ``peak_rss_mb`` (its maximum resident set, from the kernel), ``api_calls`` (the
sandbox's count of Salesforce API requests during the run, token requests excluded). The sandbox
shares the machine's cores with it, as a CRM cannot. ``--extrapolate-to N`` adds the time N leads
would take at the measured rate (a linear scale-up, labelled as such in the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchmarks._out import write_json  # noqa: E402
from sandbox.server import SandboxServer  # noqa: E402
from sync.ops.demo import sandbox_env, sandbox_settings  # noqa: E402

BACKENDS = {"static": "static", "transformer": "transformer"}


def train(history: int, seed: int, state: Path, backend: str) -> dict[str, Any]:
    """A champion trained with ``backend`` on the world's ``history`` leads (a sandbox of the same
    seed without the generated ones: a model is trained on a year's outcomes, not on the million
    old leads a backfill reads), kept in ``state`` for the backfill."""
    from sync.config.settings import ScoringSettings
    from sync.jobs.retrain import run_retrain
    from sync.wiring.deps import build_deps

    t0 = time.perf_counter()
    with SandboxServer(seed=seed, leads=history) as server:
        settings = sandbox_settings("salesforce", server.info, state,
                                    scoring=ScoringSettings(encoder_backend=BACKENDS[backend]))  # type: ignore[arg-type]
        deps = build_deps(settings)
        deps.connector.ensure_fields()
        report = run_retrain(deps, rescore=False)
        deps.store.close()
    if report.error or not report.champion:
        raise SystemExit(f"training failed: {report.error or report.reason}")
    return {"model": report.champion, "train_seconds": round(time.perf_counter() - t0, 1)}


def run(leads: int, backend: str, history: int, seed: int, static_cache: Path, chunk_leads: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="leadpilot-bench-backfill-") as tmp:
        state = Path(tmp) / "state"
        state.mkdir()
        static_cache.mkdir(parents=True, exist_ok=True)
        (state / "static-encoder").symlink_to(static_cache.resolve(), target_is_directory=True)
        model = train(history, seed, state, backend)
        (state / "leadpilot.db").unlink(missing_ok=True)  # the backfill's store starts empty, as on a first day
        with SandboxServer(seed=seed, leads=history, generated_leads=leads) as server:
            result = _backfill(server, state, backend, chunk_leads)
    total = leads + history
    return {"leads": total, "generated_leads": leads, "history_leads": history, "backend": backend,
            "seconds": result["seconds"], "leads_per_s": round(total / result["seconds"], 1), **result, **model,
            "note": "backfill process wall time, start-up and model load included; the sandbox shares the cores"}


def _backfill(server: SandboxServer, state: Path, backend: str, chunk_leads: int) -> dict[str, Any]:
    from sync.ops.demo import sandbox_settings
    from sync.wiring.connector import make_connector

    make_connector(sandbox_settings("salesforce", server.info, state)).ensure_fields()  # `leadpilot init-crm`
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADPILOT_")}
    env.update(sandbox_env("salesforce", server.info, state), LEADPILOT_LOG_LEVEL="WARNING")
    with server.ctx.lock:
        server.ctx.counters.clear()
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sync.cli", "backfill", "--json", "--backend", backend,
                           "--chunk-leads", str(chunk_leads)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"leadpilot backfill exited {done.returncode}:\n{done.stderr[-4000:]}")
    out = json.loads(done.stdout)
    with server.ctx.lock:
        counters = dict(server.ctx.counters)
    api = {k: v for k, v in counters.items() if k.startswith("salesforce") and "oauth2/token" not in k}
    # the largest resident set of any finished child: the backfill process (training ran here)
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "api_calls": sum(api.values()), "api_calls_by_endpoint": api, "progress": out["progress"],
            "chunk_leads": chunk_leads}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--leads", type=int, default=20_000, help="old leads in the org (generated on demand)")
    ap.add_argument("--backend", choices=sorted(BACKENDS), default="static")
    ap.add_argument("--history", type=int, default=1000, help="world leads with outcomes, to train on")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--chunk-leads", type=int, default=20_000)
    ap.add_argument("--static-cache", type=Path, default=Path.home() / ".cache" / "leadpilot" / "static-encoder",
                    help="where the distilled static encoder is kept between runs")
    ap.add_argument("--extrapolate-to", type=int, default=0, help="also report the time for this many leads")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    if args.leads < 1:
        ap.error("--leads must be at least 1")
    result = run(args.leads, args.backend, args.history, args.seed, args.static_cache, args.chunk_leads)
    if args.extrapolate_to:
        rate = result["leads_per_s"]
        result["extrapolated"] = {"leads": args.extrapolate_to, "seconds": round(args.extrapolate_to / rate),
                                  "note": f"linear scale-up of the rate measured on {result['leads']:,} leads, "
                                          "not a measurement"}
    print(write_json(result, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
