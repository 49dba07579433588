"""Which encoder a backfill uses by default (issue 19): the static backend only if it loses no more
than 0.005 ROC-AUC against the transformer path on the text_value benchmark's rows."""

from __future__ import annotations

import math

import pytest

from scoring.encoder_static import MAX_BACKFILL_AUC_LOSS, MEASURED_AUC, backfill_backend


def _rows(transformer: float, static: float, language: str = "all") -> list[dict[str, object]]:
    return [{"dataset": "sandbox", "n": 1000, "language": language, "variant": v, "roc_auc": a, "ece": 0.02}
            for v, a in (("transformer", transformer), ("static", static))]


@pytest.mark.parametrize(
    ("transformer", "static", "expected"),
    [(0.80, 0.795, "static"), (0.80, 0.81, "static"), (0.80, 0.7949, "transformer"), (0.80, 0.70, "transformer")],
)
def test_given_measured_rows_when_choosing_then_static_only_within_the_allowed_loss(
    transformer: float, static: float, expected: str
) -> None:
    assert MAX_BACKFILL_AUC_LOSS == 0.005
    rows = _rows(transformer, static) + [{"dataset": "sandbox", "n": 1000, "language": "all", "variant": "chosen",
                                          "roc_auc": 0.5}]
    assert backfill_backend(rows) == expected


def test_given_a_loss_in_one_language_when_choosing_then_the_transformer() -> None:
    rows = _rows(0.80, 0.80) + _rows(0.80, 0.80, "en") + _rows(0.74, 0.47, "zh")
    assert backfill_backend(rows) == "transformer"


@pytest.mark.parametrize("rows", [[], _rows(0.8, math.nan), _rows(0.8, 0.8)[:1]])
def test_given_no_comparable_pair_when_choosing_then_the_transformer(rows: list[dict[str, object]]) -> None:
    assert backfill_backend(rows) == "transformer"


def test_given_no_rows_then_the_recorded_benchmark_figures_decide() -> None:
    worst = max(round(t - s, 6) for t, s in MEASURED_AUC.values())
    assert backfill_backend() == ("static" if worst <= MAX_BACKFILL_AUC_LOSS else "transformer")
