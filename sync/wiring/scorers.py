"""Which scorer the cycle uses now, and how the retrain job replaces it.

``ModelScorers.current()`` is the registry's champion (a trained ``LeadScorer``, reloaded
when the champion changes), or in cold start the zero-shot model when one is configured,
else ``PriorScorer``. ``train(history, now)`` trains a challenger from labelled history and
lets the registry decide whether it replaces the champion.

The registry (``scoring.registry``, ``<state_dir>/models``) is the one truth about which
model is champion: it holds the model files, decides champion/challenger and is what
``leadpilot model promote | rollback`` change. The store keeps a log of the models the daemon
trained (metrics, and the decision taken then); ``champion_model`` is what status, the report
and the demo show.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from connectors.records import LabelledLead
from scoring.types import Score
from sync.config.settings import Settings
from sync.wiring.deps import Scorer, utcnow

log = logging.getLogger(__name__)


class PriorScorer:
    """The documented cold-start rule prior, used when no trained model and no zero-shot model exist.

    Every lead gets the prior conversion rate (``prior``), grade C or D and no opportunity
    flag: an honest "we do not know yet" that still lets the cycle route and write back.
    ``model_version`` is ``"prior"``. ``basis`` is what the rate rests on, in the words the
    reasons field shows reps (``ColdStartBasis.describe``); without one the rate is an
    assumption and the reasons say so.
    """

    model_version = "prior"

    def __init__(self, prior: float = 0.1, basis: str | None = None) -> None:
        if not 0.0 <= prior <= 1.0:
            raise ValueError(f"prior must be a probability in [0, 1], got {prior}")
        self.prior = prior
        self.basis = basis or f"assumed conversion rate {prior:.0%} (no closed leads read yet)"

    def score(self, rows: Sequence[Mapping[str, Any]]) -> list[Score]:
        p = self.prior
        reasons = f"Base rate only: {self.basis}"
        return [Score(probability=p, score=int(round(100 * p)), grade="C" if p >= 0.25 else "D",
                      opportunity=False, reasons=reasons, model_version=self.model_version) for _ in rows]


@dataclass(frozen=True)
class ColdStartBasis:
    """The org's labelled history as the last retrain run counted it, too small to train on.

    ``rate`` is the conversion rate shrunk towards ``DEFAULT_PRIOR`` by ``PRIOR_WEIGHT``
    pseudo-leads (a Beta prior), so 2 conversions out of 3 closed leads do not grade every
    new lead C: with a few dozen closed leads the org's own rate dominates.
    """

    history: int
    positives: int
    min_history: int
    min_positives: int

    DEFAULT_PRIOR: ClassVar[float] = 0.1
    PRIOR_WEIGHT: ClassVar[float] = 20.0

    @property
    def rate(self) -> float:
        return (self.positives + self.DEFAULT_PRIOR * self.PRIOR_WEIGHT) / (self.history + self.PRIOR_WEIGHT)

    def describe(self) -> str:
        """What the cold-start score rests on, for the reasons field (well under 250 characters)."""
        need = f"a model is trained from {self.min_history} closed leads ({self.min_positives} converted)"
        if self.history == 0:
            return f"no closed leads in the CRM yet, so the default rate {self.rate:.0%}; {need}"
        return (f"{self.positives} of {self.history} closed leads in this CRM converted "
                f"(rate {self.rate:.0%} after smoothing); {need}")


@dataclass
class TrainOutcome:
    """What one training run produced and what the registry decided."""

    version: str | None
    promoted: bool
    reason: str
    metrics: Mapping[str, Any] = field(default_factory=dict)


class ModelScorers:
    """The ``ScorerProvider`` of a deployment: registry champion, or the cold-start scorer."""

    def __init__(self, settings: Settings, store: Any, *, clock: Callable[[], datetime] = utcnow,
                 encoder: Any = None, seed: int = 0) -> None:
        self.settings, self.store, self.clock, self.seed = settings, store, clock, seed
        self.model_dir = model_dir(settings)
        self._encoder = encoder
        self._loaded: tuple[str, Scorer] | None = None
        self._cold: tuple[ColdStartBasis | None, Scorer] | None = None

    # ------------------------------------------------------------ scoring
    @property
    def version(self) -> str:
        champ = self._registry().champion_version()
        if champ:
            return str(champ)
        return str(getattr(self._cold_start(), "model_version", "prior"))

    def current(self) -> Scorer:
        registry = self._registry()
        champ = registry.champion_version()
        if not champ:
            return self._cold_start()
        if self._loaded is None or self._loaded[0] != champ:
            self._loaded = (champ, registry.load(champ, encoder=self.encoder()))
            log.info("scoring with model %s", champ)
        return self._loaded[1]

    @property
    def cold_start(self) -> bool:
        """No champion in the registry: the cycle scores with the cold-start scorer."""
        return not self._registry().champion_version()

    def _cold_start(self) -> Scorer:
        basis = self.cold_start_basis()
        if self._cold is None or self._cold[0] != basis:
            zs = self.settings.scoring.zero_shot_model
            prior = basis.rate if basis else ColdStartBasis.DEFAULT_PRIOR
            if zs:
                from scoring.zero_shot import ZeroShotScorer

                # The text model's answer is uncalibrated: with a known org rate, blend half of it in.
                self._cold = (basis, ZeroShotScorer(zs, prior=prior if basis else None,
                                                    prior_weight=0.5 if basis else 0.0))
            else:
                self._cold = (basis, PriorScorer(prior, basis.describe() if basis else None))
        return self._cold[1]

    def cold_start_basis(self) -> ColdStartBasis | None:
        """The history counts of the latest retrain run that found too little to train on (None: none ran)."""
        runs = self.store.recent_runs(limit=1, kind="train")
        if not runs or not runs[0].counts or not runs[0].counts.get("cold_start"):
            return None
        counts, cfg = runs[0].counts, self.settings.scoring
        return ColdStartBasis(int(counts.get("history", 0)), int(counts.get("positives", 0)),
                              cfg.min_history, cfg.min_history_positives)

    def encoder(self) -> Any:
        if self._encoder is None:
            self._encoder = make_encoder(self.settings)
        return self._encoder

    def _registry(self) -> Any:
        from scoring.registry import ModelRegistry

        return ModelRegistry(self.model_dir)

    # ------------------------------------------------------------ training
    def train(self, history: Sequence[LabelledLead], now: datetime, *, dry_run: bool = False) -> TrainOutcome:
        """Train a challenger on ``history``; the registry promotes it only if not worse."""
        from scoring import train_scorer

        cfg = self.settings.scoring
        rows = [h.lead.features() for h in history]
        labels = [int(h.converted) for h in history]
        stamps = [h.decided_at or h.lead.created_at or h.lead.modified_at for h in history]
        scorer, report = train_scorer(rows, labels, None, encoder=self.encoder(), seed=self.seed, timestamps=stamps,
                                      target_precision=cfg.target_precision, grade_thresholds=cfg.grade_thresholds,
                                      max_reasons_chars=cfg.max_reasons_chars)
        metrics = _metrics(report)
        if dry_run:
            return TrainOutcome(None, False, "dry run: model trained, not registered", metrics)
        decision = self._registry().challenge(scorer, report, now=now, encoder=self.encoder())
        version = str(decision.version)
        # The store logs the training run (metrics, the decision taken now); which model is
        # champion later (after `leadpilot model promote / rollback`) only the registry says.
        self.store.add_model(version, str(self._registry().path(version)), _json_safe(metrics), now,
                             status="champion" if decision.promoted else "challenger")
        log.info("retrain: %s", decision.reason)
        return TrainOutcome(version, bool(decision.promoted), str(decision.reason), metrics)


def model_dir(settings: Settings) -> Path:
    """The deployment's model registry directory."""
    return Path(settings.state_dir) / "models"


def make_encoder(settings: Settings, *, embedding_cache: bool = True) -> Any:
    """The text encoder of ``settings`` (of one org): its ``encoder_model`` on its
    ``encoder_backend``, with its files in its state directory (the ONNX export, the static
    vectors distilled once per source model, and with ``embedding_cache`` the embedding cache).

    The daemon and the CSV commands (``leadpilot evaluate | train --csv``) build it here, so a
    model trained from a CSV for an org reads text as that org's daemon does: vectors of another
    model or backend would not fit it."""
    from scoring.encoder import TextEncoder

    state = Path(settings.state_dir)
    cache = state / "encoder-cache.sqlite" if embedding_cache else None
    cfg = settings.scoring
    if cfg.encoder_backend == "static":
        from scoring.encoder_static import StaticEncoder

        # distilled once per source model, kept next to the embedding cache
        return StaticEncoder(cfg.encoder_model, cache=cache, cache_dir=state / "static-encoder")
    return TextEncoder(cfg.encoder_model, cache=cache, backend=cfg.encoder_backend, onnx_dir=state / "onnx")


def champion_model(settings: Settings, store: Any) -> tuple[str, dict[str, Any]] | None:
    """The champion's version and metrics as the registry says now, or None in cold start.

    The metrics are those the store logged when the daemon trained that version; a model it
    did not train (``leadpilot train --csv``) shows the validation metrics the registry keeps.
    """
    from scoring.registry import ModelRegistry

    registry = ModelRegistry(model_dir(settings))
    version = registry.champion_version()
    if version is None:
        return None
    logged = store.get_model(version)
    if logged is not None:
        return version, dict(logged.metrics)
    try:
        return version, _json_safe(registry.metadata(version).get("metrics", {}))
    except KeyError:  # registry.json names a version whose folder is gone: still the champion it reports
        return version, {}


def _json_safe(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool) or v is None}


def _metrics(report: Any) -> dict[str, Any]:
    if hasattr(report, "to_dict"):
        return dict(report.to_dict())
    if isinstance(report, Mapping):
        return dict(report)
    return {k: v for k, v in vars(report).items() if isinstance(v, int | float | str)}


class StaticScorers:
    """A fixed scorer (a prior, a loaded model): for dry runs of a given model, tests and benchmarks.

    ``train`` is refused: nothing here can replace the scorer.
    """

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer

    @property
    def version(self) -> str:
        return str(getattr(self.scorer, "model_version", "static"))

    @property
    def cold_start(self) -> bool:
        """Never: a fixed scorer is not replaced by training, so there is no first model to train."""
        return False

    def current(self) -> Scorer:
        return self.scorer

    def train(self, history: Sequence[LabelledLead], now: datetime, *, dry_run: bool = False) -> TrainOutcome:
        return TrainOutcome(None, False, f"scorer {self.version} is fixed; nothing trained")
