"""Does the opportunity flag mark leads at the configured precision on a young org's history?

    .venv/bin/python benchmarks/opportunity_flag.py --json out/opportunity_flag.json [--sizes 1000] [--seeds 5]

For each history size N and seed: the first N leads of the sandbox world
(``sandbox.world.leads.make_leads``, seeded; a lead converts with its true probability
``sigmoid(BASE_LOGIT + observable + latent)``, drawn from its own reserved uniform — the same
history as ``benchmarks/text_value.py``), trained with ``train_scorer`` for each target precision
(text through TF-IDF and the supervised text signal, no encoder: fast, and the flag's rule does
not depend on the text path). The trained flag is then applied to 5,000 fresh leads of another
seed, whose true conversion probabilities are known: the flag's real precision there is the mean
true probability of the leads it marks.

Rows: ``{"n", "seed", "target", "threshold", "flagged_share", "true_precision", "note"}``
(``threshold`` null: nothing flagged, ``note`` says why), plus ``summary`` per (n, target):
how many seeds set a threshold, mean flagged share, mean true precision of those that did.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._out import write_json  # noqa: E402
from sandbox.world import params as P  # noqa: E402
from sandbox.world.leads import make_leads  # noqa: E402
from scoring.training import train_scorer  # noqa: E402

FRESH_SEED = 10_000


def history(n: int, seed: int) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """``n`` seeded sandbox leads as ``Lead.features()``-style rows, their 0/1 outcomes and true probabilities."""
    rows, labels, truth = [], [], []
    for fields, _segment, observable, latent, u in make_leads(random.Random(seed), n):
        rows.append({"employees": fields["NumberOfEmployees"], "revenue": fields["AnnualRevenue"],
                     "title": fields["Title"], "industry": fields["Industry"], "country": fields["Country"],
                     "source": fields["LeadSource"], "company": fields["Company"], "text": fields["Description"]})
        p = 1 / (1 + math.exp(-(P.BASE_LOGIT + observable + latent)))
        truth.append(p)
        labels.append(int(u[0] < p))
    return rows, np.array(labels), np.array(truth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, required=True, help="write the result here")
    parser.add_argument("--sizes", default="1000", help="history sizes, comma separated")
    parser.add_argument("--seeds", type=int, default=5, help="histories per size (seeds 0..N-1)")
    parser.add_argument("--targets", default="0.6,0.8", help="target precisions, comma separated")
    args = parser.parse_args(argv)
    fresh, _, truth = history(5000, FRESH_SEED)
    rows: list[dict[str, Any]] = []
    for n in (int(s) for s in args.sizes.split(",")):
        for seed in range(args.seeds):
            train, y, _ = history(n, seed)
            for target in (float(t) for t in args.targets.split(",")):
                started = time.perf_counter()
                scorer, report = train_scorer(train, y, seed=seed, target_precision=target)
                cut = report.opportunity_threshold
                flagged = scorer.predict_proba(fresh) >= cut if cut is not None else np.zeros(len(fresh), bool)
                rows.append({"n": n, "seed": seed, "target": target, "threshold": cut,
                             "flagged_share": round(float(flagged.mean()), 4),
                             "true_precision": round(float(truth[flagged].mean()), 4) if flagged.any() else None,
                             "note": report.opportunity_note})
                print(f"n={n} seed={seed} target={target}: {report.opportunity_note} "
                      f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    summary = []
    for n, target in sorted({(r["n"], r["target"]) for r in rows}):
        group = [r for r in rows if r["n"] == n and r["target"] == target]
        set_ = [r for r in group if r["threshold"] is not None]
        summary.append({"n": n, "target": target, "seeds": len(group), "threshold_set": len(set_),
                        "mean_flagged_share": round(float(np.mean([r["flagged_share"] for r in set_])), 4)
                        if set_ else None,
                        "mean_true_precision": round(float(np.mean([r["true_precision"] for r in set_
                                                                    if r["true_precision"] is not None])), 4)
                        if set_ else None})
    write_json({"rows": rows, "summary": summary}, args.json)
    print(write_json(summary, None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
