"""leadpilot scoring: lead mappings -> calibrated probability, grade, opportunity flag, reasons.

No CRM I/O here: functions take mappings / data frames and return numbers and words.

Public API::

    from scoring import FeatureSpec, train_scorer, ModelRegistry

    scorer, report = train_scorer(rows, labels, FeatureSpec.for_crm_leads(),
                                  encoder=None, seed=0, timestamps=None)
    scorer.score(rows)          # list[Score]
    scorer.predict_proba(rows)  # np.ndarray
    scorer.explain(rows)        # list[list[Reason]]
    registry = ModelRegistry(state_dir / "models")
    registry.challenge(scorer, report)   # promoted only if not worse on the same validation data

``TextEncoder`` (``scoring.encoder``) and ``ZeroShotScorer`` (``scoring.zero_shot``) import
torch and transformers; they are re-exported lazily so ``import scoring`` stays light.
"""

from __future__ import annotations

from typing import Any

from scoring import metrics
from scoring.ensemble import ModelConfig
from scoring.features import FeatureSpec
from scoring.model import LeadScorer
from scoring.reasons import Reason
from scoring.registry import ModelLoadError, ModelRegistry, ModelVersionWarning, Promotion
from scoring.training import DataError, TrainReport, train_scorer
from scoring.types import Score

_LAZY = {"TextEncoder": "scoring.encoder", "ZeroShotScorer": "scoring.zero_shot"}

__all__ = [
    "DataError", "Promotion", "FeatureSpec", "LeadScorer", "ModelConfig", "ModelLoadError", "ModelRegistry",
    "ModelVersionWarning", "Reason", "Score", "TextEncoder", "TrainReport", "ZeroShotScorer", "metrics",
    "train_scorer",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'scoring' has no attribute {name!r}")
