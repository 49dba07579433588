"""The router: constraints first, then the policy, then an exactly-logged random choice.

Pure and seeded: plain values in, a ``Choice`` out; no clock, no I/O. Outcomes arrive
weeks later through ``record_outcome`` (applied once per lead) and are learned at the next
``tick`` together with survival soft labels for assignments still open. The prior of an
open assignment's soft label is the policy's own prediction for that lead and rep
(``open_prior="model"``, an EM step per tick) where the policy has one, else the pooled
delay-corrected rate (``"rate"``); on benchmarks/routing.py worlds 10-13 (upper95) the model
prior captured 39% of the oracle's uplift against 33% for the pooled rate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import numpy as np

from allocation.adjust import Adjuster
from allocation.base import Observations, Policy
from allocation.constraints import AssignmentRule, RepConfig, check_unique, exclusion_reason, first_rule
from allocation.decision import Choice, OpenAssignment, check_context, timestamp
from allocation.ledger import LOST, OPEN, WON, Ledger
from allocation.propensity import choice_probabilities
from allocation.rewards import DelayModel, WinRateEstimate, delay_corrected_rate, open_labels

DAY = 86_400.0


class Router:
    """Capacity-, availability- and territory-aware routing with a learning policy."""

    def __init__(
        self,
        policy: Policy,
        reps: Sequence[RepConfig],
        *,
        fallback: str | None = None,
        rules: Sequence[AssignmentRule] = (),
        delay_model: DelayModel | None = None,
        proxy_weight: float = 0.25,
        maturity_days: float = 180.0,
        propensity_method: str = "exact",
        mc_draws: int = 10_000,
        open_prior: str = "model",
    ) -> None:
        if not 0.0 <= proxy_weight <= 1.0:
            raise ValueError(f"proxy_weight must be in [0, 1], got {proxy_weight}")
        if propensity_method not in ("exact", "mc"):
            raise ValueError(f"propensity_method must be 'exact' or 'mc', got {propensity_method!r}")
        if open_prior not in ("model", "rate"):
            raise ValueError(f"open_prior must be 'model' (the policy's prediction per lead) or 'rate' (pooled win rate), got {open_prior!r}")
        self.policy = policy
        self.open_prior = open_prior
        self.fallback = fallback
        self.delay_model = delay_model
        self.proxy_weight = float(proxy_weight)
        self.maturity_days = float(maturity_days)
        self.propensity_method = propensity_method
        self.mc_draws = int(mc_draws)
        self.ledger = Ledger()
        self.open_offset: dict[str, int] = {}
        self.day_counts: dict[str, tuple[str, int]] = {}
        self.adjust = Adjuster()
        self.rng = np.random.default_rng(policy.options.seed)
        self.last_tick: datetime | None = None
        self.reps: dict[str, RepConfig] = {}
        self.rules: tuple[AssignmentRule, ...] = ()
        self.update_reps(reps, rules)
        self._open = self.ledger.open_counts()

    # -- configuration ---------------------------------------------------------------------
    def update_reps(self, reps: Sequence[RepConfig], rules: Sequence[AssignmentRule] | None = None) -> None:
        """Replace the rep list (churn) and, when given, the ordered assignment rules: learned
        state and open load of known reps are kept."""
        check_unique(reps)
        if not reps:
            raise ValueError("the router needs at least one rep (RepConfig) to route to")
        self.reps = {r.id: r for r in reps}
        if rules is not None:
            self.rules = tuple(sorted(rules, key=lambda r: r.number))
        self.policy.configure_reps({r.id: r.weight for r in reps})

    def open_load(self) -> dict[str, int]:
        """Open assignments per rep as the capacity check counts them."""
        return {rid: max(self._open.get(rid, 0) + self.open_offset.get(rid, 0), 0) for rid in self.reps}

    def sync_open(self, counts: Mapping[str, int]) -> None:
        """Set each listed rep's open load to the daemon's authoritative count.

        The difference to the router's own open assignments is kept as an offset, so closing
        one of the router's leads still frees one slot.
        """
        for rid, count in counts.items():
            if rid not in self.reps:
                raise ValueError(f"sync_open: unknown rep {rid!r}; configured reps are {sorted(self.reps)}")
            if count < 0:
                raise ValueError(f"sync_open: open count for {rid!r} must be >= 0, got {count}")
            self.open_offset[rid] = int(count) - self._open.get(rid, 0)

    def restore_open(self, assignments: Iterable[OpenAssignment]) -> int:
        """Re-add open assignments the router does not know (state lost); returns how many."""
        added = 0
        for a in assignments:
            if a.lead_id in self.ledger.row:
                continue
            check_context(a.context)
            self.ledger.add(a.lead_id, a.rep, a.context, timestamp(a.assigned_at), a.propensity)
            self._open[a.rep] += 1
            added += 1
        return added

    # -- deciding ------------------------------------------------------------------------
    def _today(self, rep: RepConfig, now: datetime) -> tuple[str, int]:
        day = rep.local(now).date().isoformat()
        seen_day, count = self.day_counts.get(rep.id, (day, 0))
        return day, count if seen_day == day else 0

    def assign(self, lead_id: str, context: Mapping[str, Any], now: datetime, attrs: Mapping[str, Any] | None = None,
               *, widen: bool = False, exclude: Mapping[str, str] | None = None) -> Choice:
        """Choose a rep for this lead (or the fallback) and remember the open assignment.

        ``context``: what the policy learns from; ``attrs``: the lead's own attributes, which
        territories and assignment rules read (``context`` when not given). The policy chooses
        only among the reps these leave eligible. ``widen``: working hours and days are not
        checked (a lead that waited in the queue past its SLA goes to a rep outside hours rather
        than wait longer); out of office, territory and capacity still are. A fallback choice
        changes no state. ``exclude``: reps left out with the given reason on top of the rules
        (the rep who left a re-routed lead untouched).
        """
        ts = timestamp(now)
        lead = context if attrs is None else attrs
        check_context(context)
        if lead_id in self.ledger.row:
            i = self.ledger.row[lead_id]
            raise ValueError(f"lead {lead_id!r} was already assigned to {self.ledger.reps[i]!r}; assign each lead once")
        load = self.open_load()
        excluded: dict[str, str] = {}
        rule = first_rule(self.rules, lead)
        for rep in self.reps.values():
            today = self._today(rep, now)[1] if rep.max_per_day is not None else 0
            checked = replace(rep, working_hours=None) if widen and rep.working_hours is not None else rep
            why = exclusion_reason(checked, lead, now, load[rep.id], today, rule)
            if why:
                excluded[rep.id] = why
        for rid, why in (exclude or {}).items():
            if rid in self.reps:
                excluded.setdefault(rid, why)
        considered = tuple(self.reps)
        eligible = tuple(r for r in considered if r not in excluded)
        name = self.policy.name
        if not eligible:
            where = f"sent to fallback queue {self.fallback!r}" if self.fallback else "left unassigned (no fallback configured)"
            return Choice(lead_id, None, 1.0, considered, (), excluded, {}, name, now,
                          f"no eligible rep among {len(considered)}; {where}", self.fallback, rule.label if rule else None)
        probs = self._probabilities(eligible, context)
        k = int(self.rng.choice(len(eligible), p=probs))
        chosen = eligible[k]
        self.ledger.add(lead_id, chosen, context, ts, float(probs[k]))
        self._open[chosen] += 1
        load[chosen] += 1
        self.adjust.update(eligible, chosen, self.reps, load, self.policy.options, self.policy.capacity_price)
        if self.reps[chosen].max_per_day is not None:
            day, count = self._today(self.reps[chosen], now)
            self.day_counts[chosen] = (day, count + 1)
        self.policy.on_assign(chosen, context, now)
        reason = f"{name} chose {chosen} with probability {probs[k]:.3f} among {len(eligible)} eligible of {len(considered)} reps"
        return Choice(lead_id, chosen, float(probs[k]), considered, eligible, excluded, dict(zip(eligible, probs.tolist(), strict=True)),
                      name, now, reason, rule=rule.label if rule else None)

    def _probabilities(self, eligible: tuple[str, ...], context: Mapping[str, Any]) -> np.ndarray:
        opts = self.policy.options
        probs = choice_probabilities(
            self.policy.index(eligible, context),
            self.adjust.bonus(eligible, opts, self.policy.fairness_scale, self.policy.capacity_price),
            opts.exploration_floor,
            posterior_share=opts.posterior_exploration,
            method=self.propensity_method,
            rng=self.rng,
            draws=self.mc_draws,
        )
        return probs / probs.sum()

    @property
    def queues(self) -> dict[str, float]:
        """Fairness virtual queue length per rep (leads owed)."""
        return self.adjust.queues

    # -- outcomes and learning ---------------------------------------------------------------
    def record_outcome(self, lead_id: str, won: bool, now: datetime) -> bool:
        """Close the lead's assignment as won/lost and free capacity; False if unknown or
        already closed (each real outcome is applied exactly once). Learned at the next tick."""
        rep = self.ledger.close(lead_id, bool(won), timestamp(now))
        if rep is None:
            return False
        self._open[rep] -= 1
        return True

    def forget(self, lead_id: str) -> bool:
        """Drop the lead's assignment without learning from it (the lead was deleted or merged
        away in the CRM, or is decided again because its owner left); an open one frees its
        rep's capacity. False if unknown."""
        dropped = self.ledger.drop(lead_id)
        if dropped is None:
            return False
        rep, status = dropped
        if status == OPEN:
            self._open[rep] -= 1
        return True

    def retire(self, lead_id: str, now: datetime, *, as_loss: bool) -> bool:
        """Take the lead's open assignment away from its rep so that it can be assigned again
        (the rep left it untouched): learned as a loss when ``as_loss`` (kept in the history
        under another key), else forgotten. Frees capacity; False if unknown or closed."""
        i = self.ledger.row.get(lead_id)
        if i is None or self.ledger.status[i] != OPEN:
            return False
        if not as_loss:
            return self.forget(lead_id)
        self.record_outcome(lead_id, False, now)
        self.ledger.rekey(lead_id, f"{lead_id}#untouched")
        return True

    def record_opportunity(self, lead_id: str, now: datetime) -> bool:
        """Early proxy reward: an opportunity was created for this open lead (applied once)."""
        timestamp(now)
        return self.ledger.mark_proxy(lead_id)

    def _delay(self, now: datetime) -> DelayModel | None:
        if self.delay_model is not None:
            return self.delay_model
        at, status, closed, _ = self.ledger.arrays()
        matured = (status != OPEN) & (at <= timestamp(now) - self.maturity_days * DAY)
        won = (closed[matured & (status == WON)] - at[matured & (status == WON)]) / DAY
        lost = (closed[matured & (status == LOST)] - at[matured & (status == LOST)]) / DAY
        return DelayModel(won, lost) if len(won) >= 20 and len(lost) >= 20 else None

    def win_rate_estimate(self, now: datetime) -> WinRateEstimate:
        """Win rate of assigned leads: delay-corrected (NaN without a delay model) and closed-only."""
        at, status, _, proxy = self.ledger.arrays()
        closed = status != OPEN
        y = (status[closed] == WON).astype(float)
        model = self._delay(now)
        ages = (timestamp(now) - at[~closed]) / DAY
        corrected = delay_corrected_rate(y, ages, model, proxy[~closed], self.proxy_weight) if model else float("nan")
        naive = float(y.mean()) if len(y) else float("nan")
        return WinRateEstimate(corrected, naive, int(closed.sum()), int((~closed).sum()))

    def tick(self, now: datetime) -> None:
        """Refit the policy from closed outcomes plus soft labels of open assignments."""
        ts = timestamp(now)
        at, status, _, proxy = self.ledger.arrays()
        weights = self.policy.options.discount ** np.maximum((ts - at) / DAY, 0.0)
        if self.policy.options.discount < 1.0:
            forgotten = (status != OPEN) & (weights < 1e-4)
            if forgotten.any():
                self.ledger.keep(~forgotten)
                at, status, _, proxy = self.ledger.arrays()
                weights = weights[~forgotten]
        labels = (status == WON).astype(float)
        open_ = status == OPEN
        model = self._delay(now)
        led = self.ledger
        if model is not None and len(at):
            # every row is used: hand the ledger's columns over without copying them
            data = Observations(keys=led.keys, reps=led.reps, contexts=led.contexts, labels=labels, weights=weights)
            labels[open_] = self._open_labels(data, open_, (ts - at[open_]) / DAY, model, proxy[open_], now)
        else:
            rows = np.flatnonzero(~open_)
            data = Observations(
                keys=[led.keys[i] for i in rows],
                reps=[led.reps[i] for i in rows],
                contexts=[led.contexts[i] for i in rows],
                labels=labels[rows],
                weights=weights[rows],
            )
        self.policy.fit(data, now)
        self.last_tick = now

    def _open_labels(self, data: Observations, open_: np.ndarray, ages: np.ndarray, model: DelayModel, proxy: np.ndarray, now: datetime) -> np.ndarray:
        # P(won | still open at this age). The prior p is the policy's own prediction for the
        # lead and rep where it has one (one EM step per tick: the refit that follows is the
        # M-step), else the pooled delay-corrected rate, which would pull every rep toward the
        # average for as long as its wins stay open (~57 days).
        prior: float | np.ndarray = self.win_rate_estimate(now).delay_corrected
        if self.open_prior == "model":
            rows = np.flatnonzero(open_).tolist()
            p_hat = self.policy.predict_observed([data.keys[i] for i in rows], [data.reps[i] for i in rows], [data.contexts[i] for i in rows])
            if p_hat is not None:
                prior = np.clip(p_hat, 1e-3, 1 - 1e-3)
        return open_labels(prior, ages, model, proxy, self.proxy_weight)

    # -- state ---------------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """JSON-serialisable, versioned state (see ``allocation.state``)."""
        from allocation.state import router_to_state

        return router_to_state(self)

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Router:
        """Rebuild a router from ``to_state`` output; refuses unknown versions."""
        from allocation.state import router_from_state

        return router_from_state(state)
