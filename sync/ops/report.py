"""The HTML report: calibration, lift/gains, learned routing vs round robin, per-rep load.

``render_report`` takes plain arrays and mappings (``ReportData``) so the demo and
``leadpilot report`` (from a deployment's state store) share it. Pictures are drawn with
matplotlib's Agg backend and embedded as PNG data URIs: one self-contained file.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class ReportData:
    title: str = "leadpilot report"
    summary: Mapping[str, Any] = field(default_factory=dict)
    # scored leads whose outcome is known: calibration and lift
    y_true: Sequence[int] = ()
    y_prob: Sequence[float] = ()
    # cumulative conversions by day: learned policy vs the round-robin counterfactual
    days: Sequence[float] = ()
    conversions_learned: Sequence[float] = ()
    conversions_round_robin: Sequence[float] = ()
    # rep -> number of leads assigned (and currently open, optional)
    rep_assigned: Mapping[str, int] = field(default_factory=dict)
    rep_open: Mapping[str, int] = field(default_factory=dict)
    # conversion-rate estimates with their intervals (label, value, low, high): on a deployment,
    # the logged policy against round robin from evaluate-policy (no ground truth there)
    policy_estimates: Sequence[tuple[str, float, float, float]] = ()
    notes: Sequence[str] = ()


def reliability_table(y_true: Sequence[int], y_prob: Sequence[float], bins: int = 10) -> list[dict[str, float]]:
    """Equal-width bins: mean predicted probability vs observed rate, with counts."""
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    rows = []
    for b in range(bins):
        m = idx == b
        if m.any():
            rows.append({"bin": b, "lo": b / bins, "hi": (b + 1) / bins, "n": int(m.sum()),
                         "predicted": float(p[m].mean()), "observed": float(y[m].mean())})
    return rows


def gains_curve(y_true: Sequence[int], y_prob: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Share of leads contacted (by descending score) vs share of conversions captured."""
    y = np.asarray(y_true, dtype=float)
    order = np.argsort(-np.asarray(y_prob, dtype=float), kind="stable")
    captured = np.concatenate([[0.0], np.cumsum(y[order]) / max(y.sum(), 1.0)])
    contacted = np.linspace(0.0, 1.0, len(y) + 1)
    return contacted, captured


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _figures(data: ReportData) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out: list[tuple[str, str]] = []
    if len(data.y_true) and len(set(data.y_true)) > 1:
        rows = reliability_table(data.y_true, data.y_prob)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
        ax.plot([r["predicted"] for r in rows], [r["observed"] for r in rows], "o-", label="leadpilot")
        ax.set(xlabel="predicted probability", ylabel="observed conversion rate", title="Calibration")
        ax.legend()
        out.append(("Calibration curve", _png(fig)))
        x, g = gains_curve(data.y_true, data.y_prob)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.plot(x, g, label="by leadpilot score")
        ax.plot([0, 1], [0, 1], "--", color="grey", label="random order")
        ax.set(xlabel="share of leads worked (highest score first)", ylabel="share of conversions", title="Cumulative gains")
        ax.legend()
        out.append(("Lift / gains chart", _png(fig)))
    if len(data.days):
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(data.days, data.conversions_learned, label="leadpilot routing")
        ax.plot(data.days, data.conversions_round_robin, "--", label="round robin (counterfactual)")
        ax.set(xlabel="day", ylabel="expected conversions (cumulative)", title="Learned routing vs round robin")
        ax.legend()
        out.append(("Cumulative conversions", _png(fig)))
    if data.policy_estimates:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        labels = [e[0] for e in data.policy_estimates]
        values = [e[1] for e in data.policy_estimates]
        err = [[e[1] - e[2] for e in data.policy_estimates], [e[3] - e[1] for e in data.policy_estimates]]
        ax.bar(labels, values, yerr=err, capsize=8, color=["tab:blue", "tab:grey"][: len(labels)])
        ax.set(ylabel="conversion rate (95 % interval)", title="Learned routing vs round robin (estimated)")
        ax.set_ylim(0, min(1.0, max(e[3] for e in data.policy_estimates) * 1.2 + 0.01))
        out.append(("Routing: logged policy vs round robin", _png(fig)))
    if data.rep_assigned:
        reps = sorted(data.rep_assigned)
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(reps) + 1.5))
        ax.barh(reps, [data.rep_assigned[r] for r in reps], label="assigned")
        if data.rep_open:
            ax.barh(reps, [data.rep_open.get(r, 0) for r in reps], label="open now")
        ax.set(xlabel="leads", title="Per-rep load")
        ax.legend()
        out.append(("Per-rep load", _png(fig)))
    return out


def render_report(data: ReportData, out_dir: Path | str, filename: str = "leadpilot-report.html") -> Path:
    """Write the self-contained HTML report and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    esc = html.escape
    rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(_fmt(v))}</td></tr>" for k, v in data.summary.items())
    figs = "".join(f'<figure><img alt="{esc(t)}" src="{src}"><figcaption>{esc(t)}</figcaption></figure>'
                   for t, src in _figures(data))
    rel = ""
    if len(data.y_true):
        rel = "".join(f"<tr><td>{r['lo']:.1f}–{r['hi']:.1f}</td><td>{r['n']}</td><td>{r['predicted']:.3f}</td>"
                      f"<td>{r['observed']:.3f}</td></tr>" for r in reliability_table(data.y_true, data.y_prob))
        rel = ("<h2>Reliability table</h2><table><tr><th>bin</th><th>leads</th><th>predicted</th>"
               f"<th>observed</th></tr>{rel}</table>")
    notes = "".join(f"<li>{esc(n)}</li>" for n in data.notes)
    doc = f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{esc(data.title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}
figure{{display:inline-block;margin:0 1em 1em 0}}img{{max-width:520px}}</style></head><body>
<h1>{esc(data.title)}</h1><p>Generated {datetime.now(UTC).isoformat(timespec="seconds")}</p>
<h2>Summary</h2><table>{rows}</table>{figs}{rel}{f"<h2>Notes</h2><ul>{notes}</ul>" if notes else ""}
</body></html>"""
    path = out / filename
    path.write_text(doc, encoding="utf-8")
    return path


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
