"""The simulated sales world behind the sandbox CRM.

Seeded and driven by the store's simulated clock: leads arrive as a Poisson process
(fewer at weekends) into a queue-like owner; once a lead is owned by a rep (set by
anyone, through either dialect) its outcome is drawn from a ground-truth probability
that depends on the lead and on that rep's skill for the lead's segment; converted leads
become opportunities that close won or lost after delays fitted from real data
(``world.params``). Each lead uses its own random stream and one uniform draw for
"converts?", so outcomes do not depend on the order things happen in, and a better rep
converts every lead a worse rep would (common random numbers; good for evaluation).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Any

from sandbox.store import Store
from sandbox.world import params as P
from sandbox.world.leads import SEGMENTS, make_leads

NewLead = tuple[dict[str, Any], str, float, float, list[float]]

SCENARIOS = ("flat", "skilled")
REP_NAMES = ("Avery Chen", "Blake Morgan", "Carmen Ruiz", "Dmitri Volkov", "Elena Rossi",
             "Farid Haddad", "Grace Okafor", "Hiro Tanaka")
FORMER_REP = "Ivan Petrov"  # an inactive user: must never be routed to


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


_NORMAL = NormalDist()


def _quantile_draw(u: float, values: list[float] | list[int]) -> float:
    """Inverse-CDF draw from a table of 5 % quantiles (linear in between)."""
    x = u * (len(values) - 1)
    i = int(x)
    j = min(i + 1, len(values) - 1)
    return values[i] + (values[j] - values[i]) * (x - i)


def _lognormal_days(u: float, median_sigma: tuple[float, float]) -> timedelta:
    median, sigma = median_sigma
    return timedelta(days=median * math.exp(sigma * _NORMAL.inv_cdf(u)))


@dataclass
class Rep:
    """A sales rep (a Salesforce User / HubSpot owner) and their true skill per segment."""

    user_id: str
    name: str
    email: str
    skill: dict[str, float]  # segment -> logit shift of the conversion probability


@dataclass
class LeadTruth:
    """What the world knows about a lead and no API shows."""

    segment: str
    logit: float  # base conversion logit without the rep's skill
    p_win: float  # P(opportunity won | converted)
    # The lead's own uniforms, drawn at arrival (so outcomes do not depend on the order in
    # which leads are routed): 0 converts?, 1 contact delay, 2 convert/disqualify delay,
    # 3 won?, 4 close delay, 5 amount.
    u: list[float]
    rep: str | None = None  # the rep owning it when its outcome was drawn
    converted: bool | None = None
    won: bool | None = None


class World:
    """Users, lead arrivals, outcomes and ground truth over one ``Store``."""

    def __init__(self, store: Store, seed: int = 0, scenario: str = "skilled",
                 integration_username: str = "integration@leadpilot.sandbox",
                 arrivals_per_day: float | None = None) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)}")
        self.store, self.seed, self.scenario = store, seed, scenario
        self.rng = random.Random(f"world:{seed}")
        self.arrivals_per_day = arrivals_per_day
        self.truth: dict[str, LeadTruth] = {}
        self._unrouted: set[str] = set()  # leads whose outcome is not drawn yet
        self._events: list[tuple[datetime, int, str, str]] = []
        self._arriving: dict[str, NewLead] = {}  # leads drawn for scheduled arrivals
        self._seq = itertools.count()
        self.reps: dict[str, Rep] = {}
        self.rep_username = ""
        self._create_users(integration_username)

    # ------------------------------------------------------------------ users
    def _create_users(self, integration_username: str) -> None:
        at = self.store.clock.now() - timedelta(days=400)

        # Profiles, as a fresh org has them: the integration user is an administrator; reps have
        # the standard profile (leadpilot's fields reach them through a permission set only).
        # Fixed ids: drawing them from the store's sequence would shift every record id after them.
        admin = self.store.insert("Profile", {"Id": "00e000000000001AAA", "Name": "System Administrator",
                                              "UserLicenseName": "Salesforce"}, at=at)
        standard = self.store.insert("Profile", {"Id": "00e000000000002AAA", "Name": "Standard User",
                                                 "UserLicenseName": "Salesforce"}, at=at)

        def user(name: str, username: str, active: bool = True, utype: str = "Standard", profile: str = standard) -> str:
            first, _, last = name.partition(" ")
            return self.store.insert("User", {"Name": name, "FirstName": first, "LastName": last or name,
                                              "Email": username, "Username": username, "ProfileId": profile,
                                              "IsActive": active, "UserType": utype}, at=at)

        self.integration_user_id = user("Integration User", integration_username, profile=admin)
        self.queue_id = user("Lead Queue", "lead-queue@leadpilot.sandbox", utype="Queue")
        for name in REP_NAMES:
            email = name.lower().replace(" ", ".") + "@leadpilot.sandbox"
            uid = user(name, email)
            self.reps[uid] = Rep(uid, name, email, self._draw_skill())
            self.rep_username = self.rep_username or email  # the rep who logs in (Credentials.rep_username)
        user(FORMER_REP, "ivan.petrov@leadpilot.sandbox", active=False)

    def _draw_skill(self) -> dict[str, float]:
        if self.scenario == "flat":
            return dict.fromkeys(SEGMENTS, 0.0)
        skill = {s: self.rng.gauss(0.0, P.SKILL_LOGIT_SD) for s in SEGMENTS}
        skill[self.rng.choice(SEGMENTS)] += P.SPECIALIST_BONUS
        return skill

    # ------------------------------------------------------------------ ground truth
    def p_convert(self, lead_id: str, rep_id: str) -> float:
        """True probability that ``lead_id`` converts when owned by ``rep_id``."""
        t = self.truth[lead_id]
        return _sigmoid(t.logit + self.reps[rep_id].skill[t.segment])

    def ground_truth(self, lead_ids: list[str] | None = None) -> list[dict[str, Any]]:
        """Per lead: segment, P(convert) and P(won) for every active rep, and what happened."""
        with self.store.lock:
            ids = lead_ids if lead_ids is not None else list(self.truth)
            out = []
            for lid in ids:
                t = self.truth.get(lid)
                if t is None:
                    continue
                pc = {r: round(self.p_convert(lid, r), 6) for r in self.reps}
                out.append({"lead_id": lid, "segment": t.segment, "p_convert": pc,
                            "p_win_given_convert": round(t.p_win, 6),
                            "p_won": {r: round(p * t.p_win, 6) for r, p in pc.items()},
                            "assigned_rep": t.rep, "converted": t.converted, "won": t.won})
            return out

    # ------------------------------------------------------------------ arrivals
    def populate(self, n: int) -> None:
        """Preload ``n`` leads created over the last 90 days; older ones were routed
        uniformly at random (so history has every rep) and their outcomes played out."""
        if n <= 0:
            return
        if self.arrivals_per_day is None:
            self.arrivals_per_day = max(P.ARRIVALS_PER_DAY, n / P.HISTORY_DAYS)
        now = self.store.clock.now()
        times: list[datetime] = []
        while len(times) < n:
            t = now - timedelta(days=self.rng.random() * P.HISTORY_DAYS)
            if t.weekday() < 5 or self.rng.random() < 0.3:
                times.append(t)
        times.sort()
        reps = sorted(self.reps)
        with self.store.lock:
            for t, lead in zip(times, make_leads(self.rng, n), strict=True):
                lid = self._arrive(t, lead)
                if (now - t).total_seconds() > P.UNROUTED_RECENT_DAYS * 86400:
                    routed_at = t + timedelta(hours=self.rng.uniform(0.1, 8.0))
                    self._write("Lead", lid, {"OwnerId": self.rng.choice(reps)}, routed_at)
                    self._draw_outcome(lid, routed_at)
            self._run_events(until=now, move_clock=False)

    def _arrive(self, at: datetime, lead: NewLead) -> str:
        fields, segment, observable, latent, u = lead
        fields["OwnerId"] = self.queue_id
        lid = self.store.insert("Lead", fields, at=at)
        logit = P.BASE_LOGIT + observable + latent
        p_win = _sigmoid(math.log(P.OPP_WIN_RATE / (1 - P.OPP_WIN_RATE)) + 0.3 * (observable + latent))
        self.truth[lid] = LeadTruth(segment, logit, p_win, u)
        self._unrouted.add(lid)
        return lid

    def _arrival_times(self, start: datetime, end: datetime) -> list[datetime]:
        """A Poisson process between ``start`` and ``end`` (weekends at 30 %, by thinning)."""
        peak = (self.arrivals_per_day or P.ARRIVALS_PER_DAY) * 7 / 5.6  # keeps the weekly mean
        out: list[datetime] = []
        t = start
        while True:
            t = t + timedelta(days=self.rng.expovariate(peak))
            if t >= end:
                return out
            if t.weekday() < 5 or self.rng.random() < 0.3:
                out.append(t)

    # ------------------------------------------------------------------ outcomes
    def observe(self) -> int:
        """Draw outcomes for leads that a rep now owns; returns how many were drawn."""
        with self.store.lock:
            now = self.store.clock.now()
            drawn = 0
            for lid in sorted(self._unrouted):
                rec = self.store.get("Lead", lid)
                if rec is not None and rec.get("OwnerId") in self.reps:
                    self._draw_outcome(lid, now)
                    drawn += 1
            return drawn

    def _draw_outcome(self, lid: str, at: datetime) -> None:
        t = self.truth[lid]
        rec = self.store.get("Lead", lid)
        assert rec is not None
        t.rep = rec["OwnerId"]
        self._unrouted.discard(lid)
        u = t.u
        t.converted = u[0] < self.p_convert(lid, rec["OwnerId"])
        contacted = at + _lognormal_days(u[1], P.CONTACT_DELAY)
        self._push(contacted, "contact", lid)
        if t.converted:
            self._push(contacted + _lognormal_days(u[2], P.CONVERT_DELAY), "convert", lid)
        else:
            self._push(contacted + _lognormal_days(u[2], P.DISQUALIFY_DELAY), "disqualify", lid)

    def _push(self, at: datetime, kind: str, rid: str) -> None:
        heapq.heappush(self._events, (at, next(self._seq), kind, rid))

    def _run_events(self, until: datetime, move_clock: bool, arrivals: list[datetime] | None = None) -> dict[str, int]:
        done: dict[str, int] = {"arrive": 0, "contact": 0, "convert": 0, "disqualify": 0, "close": 0}
        new = make_leads(self.rng, len(arrivals or []))
        for t, lead in zip(arrivals or [], new, strict=True):
            key = str(next(self._seq))
            self._arriving[key] = lead
            self._push(t, "arrive", key)
        clock = self.store.clock
        while self._events and self._events[0][0] <= until:
            at, _, kind, rid = heapq.heappop(self._events)
            if kind != "arrive" and (self.store.get("Lead", rid) or {}).get("IsDeleted"):
                continue  # deleted or merged away by an admin: nobody works it any more
            if move_clock and at > clock.now():
                clock.advance(at - clock.now())
            stamp = None if move_clock else at
            getattr(self, f"_on_{kind}")(rid, at, stamp)
            done[kind] += 1
        if move_clock and until > clock.now():
            clock.advance(until - clock.now())
        return done

    def _write(self, obj: str, rid: str, values: dict[str, Any], at: datetime | None) -> None:
        """The world's own writes: canonical names known valid, so skip ``Store.update``'s
        name checks (the hot path of preloading); still bumps the modstamp as every write does."""
        rec = self.store.records[obj][rid]
        rec.update(values)
        ts = at or self.store.clock.stamp()
        rec["LastModifiedDate"] = rec["SystemModstamp"] = ts
        self.store.version += 1

    def _on_arrive(self, key: str, at: datetime, _stamp: datetime | None) -> None:
        self._arrive(at, self._arriving.pop(key))

    def _on_contact(self, lid: str, at: datetime, stamp: datetime | None) -> None:
        if self.store.get("Lead", lid)["Status"] == "Open - Not Contacted":  # type: ignore[index]
            self._write("Lead", lid, {"Status": "Working - Contacted"}, at=stamp)
        self.store.log_activity(lid, at)  # the call that made the contact

    def _on_disqualify(self, lid: str, _at: datetime, stamp: datetime | None) -> None:
        self._write("Lead", lid, {"Status": "Closed - Not Converted"}, at=stamp)

    def _on_convert(self, lid: str, at: datetime, stamp: datetime | None) -> None:
        t = self.truth[lid]
        lead = self.store.get("Lead", lid)
        assert lead is not None
        u = t.u
        t.won = u[3] < t.p_win
        close_at = at + timedelta(days=_quantile_draw(u[4], P.WON_DAYS if t.won else P.LOST_DAYS))
        amount = round(_quantile_draw(u[5], P.WON_AMOUNT), 2)
        oid = self.store.insert("Opportunity", {
            "Name": f"{lead['Company']} - new business", "StageName": "Qualification", "IsClosed": False,
            "IsWon": False, "Amount": amount, "CloseDate": close_at.date(), "OwnerId": lead["OwnerId"]}, at=stamp or at)
        self.store.opportunity_lead[oid] = lid
        self._write("Lead", lid, {"IsConverted": True, "ConvertedOpportunityId": oid, "ConvertedDate": at.date(),
                                        "Status": "Closed - Converted"}, at=stamp)
        self._push(close_at, "close", oid)

    def _on_close(self, oid: str, at: datetime, stamp: datetime | None) -> None:
        won = bool(self.truth[self.store.opportunity_lead[oid]].won)
        self._write("Opportunity", oid, {"StageName": "Closed Won" if won else "Closed Lost", "IsClosed": True,
                                               "IsWon": won, "CloseDate": at.date()}, at=stamp)

    # ------------------------------------------------------------------ time
    def advance(self, delta: timedelta) -> dict[str, Any]:
        """Move the clock forward by ``delta``: draw outcomes for newly owned leads, let
        leads arrive and scheduled events happen, in time order."""
        if delta < timedelta(0):
            raise ValueError("the simulated clock only moves forward: use a positive number of days")
        with self.store.lock:
            drawn = self.observe()
            start = self.store.clock.now()
            end = start + delta
            done = self._run_events(until=end, move_clock=True, arrivals=self._arrival_times(start, end))
            return {"now": self.store.clock.now().isoformat(), "outcomes_drawn": drawn, **done}
