"""The policy interface every allocation policy implements, and the values it trades in.

A policy never sees capacity, hours or territories: the router hands it the reps that are
already eligible and asks for an *index* per rep. The index is either a deterministic score
(round robin, UCB1, greedy) or an independent random score with a known distribution
(Thompson sampling). Turning an index into choice probabilities (with the fairness bonus and
the exploration floor) happens once, in ``allocation.propensity``, so every policy logs exact
propensities the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np

from allocation.options import PolicyOptions

Context = Mapping[str, Any]


@dataclass(frozen=True)
class Deterministic:
    """Scores; the highest wins, ties go to the earlier rep (stable, testable).

    ``sd`` is the posterior SD of each score when the scores are posterior means (greedy
    contextual): the ``posterior_exploration`` share is then spent by Thompson sampling.
    """

    scores: np.ndarray
    sd: np.ndarray | None = None


@dataclass(frozen=True)
class GaussianIndex:
    """Independent normal scores N(mean, sd²) — a Laplace posterior over logits."""

    mean: np.ndarray
    sd: np.ndarray


@dataclass(frozen=True)
class BetaIndex:
    """Independent Beta(a, b) scores — a Beta-Bernoulli posterior over win rates."""

    a: np.ndarray
    b: np.ndarray


Index = Deterministic | GaussianIndex | BetaIndex


@dataclass
class Observations:
    """What the router has learned so far, one row per assignment it can learn from.

    ``labels`` are in [0, 1]: 1/0 for closed won/lost, a survival soft label for an open
    assignment. ``weights`` already include discounting.
    """

    keys: Sequence[str]
    reps: Sequence[str]
    contexts: Sequence[Context]
    labels: np.ndarray
    weights: np.ndarray
    ages_days: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __len__(self) -> int:
        return len(self.reps)


class Policy(ABC):
    """A routing policy: learns from observations, scores eligible reps for one lead."""

    name: str = "policy"
    # Typical spread of this policy's index; one lead owed by the fairness queue adds this much.
    default_fairness_scale: float = 0.1
    # The capacity price step when the options leave it unset (None).
    default_capacity_price: float = 0.0

    def __init__(self, options: PolicyOptions) -> None:
        # Resolved here, so options (and a saved state) always say which price the policy runs.
        if options.capacity_price is None:
            options = replace(options, capacity_price=self.default_capacity_price)
        self.options = options

    @property
    def fairness_scale(self) -> float:
        """Score bonus per lead owed to a rep by its fairness queue."""
        return self.options.fairness_scale or self.default_fairness_scale

    @property
    def capacity_price(self) -> float:
        """Step of the capacity price (0: off)."""
        price = self.options.capacity_price
        return self.default_capacity_price if price is None else price

    @abstractmethod
    def index(self, reps: Sequence[str], context: Context) -> Index:
        """The index (scores or score distributions) of each eligible rep, in order."""

    def fit(self, data: Observations, now: datetime) -> None:  # noqa: B027 - optional hook
        """Refit from all observations (called by ``Router.tick``); default: nothing to learn."""

    def configure_reps(self, weights: Mapping[str, float]) -> None:  # noqa: B027
        """Receive each rep's configured share weight (round robin uses it)."""

    def on_assign(self, rep: str, context: Context, now: datetime) -> None:  # noqa: B027
        """Hook called after each assignment (round robin moves its clock here)."""

    @abstractmethod
    def params(self) -> dict[str, Any]:
        """Constructor keyword arguments beyond the common options (for ``make_policy``)."""

    @abstractmethod
    def fitted_state(self) -> dict[str, Any]:
        """JSON-serialisable learned state."""

    @abstractmethod
    def load_fitted_state(self, state: Mapping[str, Any]) -> None:
        """Restore what ``fitted_state`` returned."""

    def predict_observed(self, keys: Sequence[str], reps: Sequence[str], contexts: Sequence[Context]) -> np.ndarray | None:
        """Win probability of each (rep, lead) row already seen in ``fit`` (None: no model).

        The router uses it as the prior of an open assignment's soft label."""
        return None

    def predict(self, reps: Sequence[str], context: Context) -> np.ndarray:
        """Point estimate of each rep's win probability for this lead (for OPE reward models)."""
        idx = self.index(reps, context)
        if isinstance(idx, BetaIndex):
            return idx.a / (idx.a + idx.b)
        if isinstance(idx, GaussianIndex):
            return 1.0 / (1.0 + np.exp(-idx.mean))
        raise NotImplementedError(f"{self.name} has no probability model")


class StatelessPolicy(Policy):
    """A policy with no parameters of its own and nothing learned (uniform random, fixed
    scores). Subclassing this says so explicitly; every other policy must implement the
    state methods, so a stateful one cannot silently lose its state on a round trip."""

    def params(self) -> dict[str, Any]:
        """No parameters beyond the common options."""
        return {}

    def fitted_state(self) -> dict[str, Any]:
        """Nothing learned."""
        return {}

    def load_fitted_state(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore."""

