"""Fit the sandbox world's delay and win-rate numbers from ../shared/data/crm-sales-opportunities.

Run by hand: ``.venv/bin/python benchmarks/fit_sandbox_world.py [DATA_DIR]``. It prints a JSON
document; the numbers are copied into ``sandbox/world/params.py`` (the sandbox must not need
the data at run time). Closed opportunities only (Won/Lost); delay = close_date - engage_date.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

QUANTILES = [round(q, 2) for q in np.linspace(0, 1, 21)]


def fit(data_dir: Path) -> dict[str, object]:
    pipe = pd.read_csv(data_dir / "sales_pipeline.csv")
    accounts = pd.read_csv(data_dir / "accounts.csv")
    accounts["sector"] = accounts["sector"].replace("technolgy", "technology")
    closed = pipe[pipe["deal_stage"].isin(["Won", "Lost"])].copy()
    closed["days"] = (pd.to_datetime(closed["close_date"]) - pd.to_datetime(closed["engage_date"])).dt.days
    won = closed["deal_stage"] == "Won"
    merged = closed.merge(accounts, on="account", how="left")
    rep_rates = merged.groupby("sales_agent")["deal_stage"].apply(lambda s: float((s == "Won").mean()))
    rep_sector = merged.groupby(["sales_agent", "sector"])["deal_stage"].apply(lambda s: float((s == "Won").mean()))
    counts = merged.groupby(["sales_agent", "sector"]).size()
    # The raw rep x sector spread includes binomial noise; subtract it to estimate the real spread.
    p = float(won.mean())
    noise_var = float((p * (1 - p) / counts).mean())
    true_sd = float(np.sqrt(max(rep_sector.var() - noise_var, 0.0)))
    return {
        "n_closed": int(len(closed)),
        "win_rate": round(p, 4),
        "quantiles": QUANTILES,
        "won_days_quantiles": [float(x) for x in np.quantile(closed.loc[won, "days"], QUANTILES)],
        "lost_days_quantiles": [float(x) for x in np.quantile(closed.loc[~won, "days"], QUANTILES)],
        "won_amount_quantiles": [float(x) for x in np.quantile(closed.loc[won, "close_value"], QUANTILES)],
        "rep_win_rate_sd": round(float(rep_rates.std()), 4),
        "rep_sector_win_rate_sd_raw": round(float(rep_sector.std()), 4),
        "rep_sector_win_rate_sd_denoised": round(true_sd, 4),
        "win_rate_by_sector": {k: round(float(v), 4) for k, v in merged.groupby("sector")["deal_stage"].apply(lambda s: (s == "Won").mean()).items()},
    }


if __name__ == "__main__":
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "crm-sales-opportunities"
    print(json.dumps(fit(Path(sys.argv[1]) if len(sys.argv) > 1 else default), indent=1))
