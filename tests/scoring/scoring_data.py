"""Synthetic leads for the tabular scoring tests (imported by conftest and tests)."""

from __future__ import annotations


def synthetic_leads(n: int = 400, seed: int = 0) -> tuple[list[dict], list[int]]:
    """Leads whose conversion depends on source, occupation, visits and budget words in the message.

    Reference leads and budget/timeline messages convert more; students convert less.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    sources = ["Reference", "Google", "Olark Chat", "Direct", "Select"]
    occupations = ["Working Professional", "Student", "Unemployed", None]
    rows, labels = [], []
    for _ in range(n):
        src = sources[rng.integers(len(sources))]
        occ = occupations[rng.integers(len(occupations))]
        visits = float(rng.poisson(3))
        budget = rng.random() < 0.3
        text = ("We have budget approved and a timeline for next quarter" if budget
                else ["just browsing", "send me the brochure", "", "what is this course about"][rng.integers(4)])
        z = (-1.6 + 2.2 * (src == "Reference") - 1.8 * (occ == "Student") + 0.25 * visits + 1.6 * budget
             - 0.5 * (src == "Olark Chat"))
        labels.append(int(rng.random() < 1 / (1 + np.exp(-z))))
        rows.append({"source": src, "occupation": occ, "visits": visits, "text": text})
    return rows, labels
