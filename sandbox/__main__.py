"""``python -m sandbox [--port 0] [--seed N] [--leads N] [--generated-leads N] [--scenario flat|skilled] [--faults SPEC]``.

The same as ``leadpilot sandbox serve``, without the rest of leadpilot: prints one JSON
line (the contract) and serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import sys

from sandbox.admin import BadFaults, parse_faults
from sandbox.server import SandboxServer, serve_until_signal
from sandbox.world.simulation import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--leads", type=int, default=0)
    ap.add_argument("--generated-leads", type=int, default=0,
                    help="old leads made on demand from the seed (up to millions, in constant memory)")
    ap.add_argument("--scenario", choices=SCENARIOS, default="skilled")
    ap.add_argument("--faults", default="")
    args = ap.parse_args(argv)
    try:
        faults = parse_faults(args.faults)
    except BadFaults as exc:
        ap.error(f"--faults: {exc}")
    if args.leads < 0 or args.generated_leads < 0:
        ap.error("--leads and --generated-leads must be 0 or more")
    server = SandboxServer(seed=args.seed, leads=args.leads, scenario=args.scenario, faults=faults, port=args.port,
                           generated_leads=args.generated_leads)
    try:
        serve_until_signal(server, sys.stdout)
    except OSError as exc:
        print(f"cannot start the sandbox on 127.0.0.1:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
