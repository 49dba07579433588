"""Values scoring hands back. Pure data; no CRM, no I/O."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Score:
    """One lead's score, as written to the CRM."""

    probability: float  # calibrated P(convert)
    score: int  # 0..100, round(100 * probability)
    grade: str  # "A".."D"
    opportunity: bool  # the opportunity flag
    reasons: str  # top positive/negative reasons in words, <= ~250 chars
    model_version: str  # registry version, or "zero-shot:<model>" / "prior" in cold start
