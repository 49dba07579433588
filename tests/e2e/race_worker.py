"""One leadpilot process of the two-process race test (``test_two_processes.py``).

Started as a real process: ``python race_worker.py '<json config>'``. It wires leadpilot
against the sandbox the parent runs (real connector over HTTPS, the shared store), then
for each line ``<iso time>`` on stdin runs one sync cycle and one rewards run at that
simulated time and answers one JSON line with what they did. EOF ends it.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def main() -> None:
    from connectors.retry import RetryPolicy
    from sync.config.settings import RoutingSettings
    from sync.jobs.cycle import run_cycle
    from sync.jobs.rewards import run_rewards
    from sync.ops.demo import sandbox_settings
    from sync.wiring.connector import make_connector
    from sync.wiring.deps import build_deps
    from sync.wiring.scorers import PriorScorer, StaticScorers

    config = json.loads(sys.argv[1])
    state = Path(config["state_dir"])
    now = [datetime.fromisoformat(config["now"])]
    settings = sandbox_settings(config["crm"], config["info"], state, store_url=config["store_url"],
                                routing=RoutingSettings(file=state / "no-routing.toml"))

    def clock() -> datetime:
        return now[0]

    def sleep(_seconds: float) -> None:  # never real time: the parent moves the simulated clock
        return None

    connector = make_connector(settings, now=clock, sleep=sleep, policy=RetryPolicy())
    deps = build_deps(settings, connector=connector, clock=clock, scorers=StaticScorers(PriorScorer(0.2)))
    deps.sleep = sleep
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        now[0] = datetime.fromisoformat(line.strip())
        cycle = run_cycle(deps)
        rewards = run_rewards(deps)
        print(json.dumps({"cycle": {"error": cycle.error, "stopped": cycle.stopped, **cycle.counts()},
                          "rewards": {"error": rewards.error, "stopped": rewards.stopped, **rewards.counts()},
                          "lost_races": deps.router.lost_races}),
              flush=True)


if __name__ == "__main__":
    main()
