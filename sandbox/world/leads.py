"""Synthetic leads: realistic attributes, a free-text message with intent cues, and the
lead's ground-truth conversion logit (before the assigned rep's skill is added).

The cues a scorer can learn are in the observable fields (title, size, source, the
message's budget / timeline / seat-count / student cues); ``latent`` is noise no model sees.
"""

from __future__ import annotations

import bisect
import math
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, TypeVar

import numpy as np

from sandbox.world import params as P

T = TypeVar("T")

SIZE_BANDS = ("SMB", "MidMarket", "Enterprise")
REGIONS = ("Americas", "EMEA", "APAC")
SEGMENTS = tuple(f"{b}/{r}" for b in SIZE_BANDS for r in REGIONS)

COUNTRIES: dict[str, tuple[str, float]] = {  # country -> (region, weight)
    "United States": ("Americas", 0.34), "Canada": ("Americas", 0.05), "Brazil": ("Americas", 0.04),
    "United Kingdom": ("EMEA", 0.10), "Germany": ("EMEA", 0.08), "France": ("EMEA", 0.06),
    "Netherlands": ("EMEA", 0.03), "China": ("APAC", 0.12), "Singapore": ("APAC", 0.03),
    "India": ("APAC", 0.07), "Australia": ("APAC", 0.05), "Japan": ("APAC", 0.03),
}
INDUSTRIES = ("Technology", "Finance", "Healthcare", "Retail", "Manufacturing", "Education",
              "Telecommunications", "Media", "Consulting", "Government")
SOURCES: dict[str, tuple[float, float]] = {  # LeadSource -> (weight, logit effect)
    "Web": (0.38, 0.0), "Partner Referral": (0.10, 0.5), "Trade Show": (0.12, 0.2),
    "Advertisement": (0.15, -0.2), "Phone Inquiry": (0.08, 0.3), "Purchased List": (0.17, -0.7),
}
TITLES: dict[str, tuple[tuple[str, ...], float, float]] = {  # seniority -> (titles, weight, logit)
    "c_level": (("CEO", "CTO", "CFO", "COO", "Chief Revenue Officer"), 0.07, 0.6),
    "vp": (("VP Sales", "VP Engineering", "VP Operations", "VP Marketing"), 0.10, 0.5),
    "director": (("Director of IT", "Sales Director", "Director of Operations", "Head of Procurement"), 0.17, 0.35),
    "manager": (("IT Manager", "Operations Manager", "Marketing Manager", "Project Manager"), 0.28, 0.1),
    "individual": (("Software Engineer", "Analyst", "Consultant", "Account Executive", "Specialist"), 0.30, -0.2),
    "student": (("Student", "Intern", "PhD Candidate"), 0.08, -1.6),
}
SIZE_LOGIT = {"SMB": -0.2, "MidMarket": 0.1, "Enterprise": 0.3}
# States/provinces of the countries that have them, written as real orgs hold them: full names
# mostly, the postal code for some (territories may name either form).
STATES: dict[str, tuple[str, ...]] = {
    "United States": ("California", "New York", "Texas", "WA", "Illinois", "MA", "Florida", "Colorado"),
    "Canada": ("Ontario", "Quebec", "BC", "Alberta"),
    "Germany": ("Bayern", "Berlin", "Hamburg", "Nordrhein-Westfalen", "Hessen"),
}

FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Sarah",
         "Lukas", "Emma", "Hugo", "Chloe", "Arjun", "Priya", "Lucas", "Sofia", "Noah", "Olivia", "Kenji", "Aiko")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Garcia", "Wilson", "Taylor",
        "Müller", "Schmidt", "Dubois", "Martin", "Sharma", "Patel", "Silva", "Santos", "Tanaka", "Sato")
CN_FIRST = ("伟", "芳", "娜", "敏", "静", "强", "磊", "洋", "艳", "杰")
CN_LAST = ("王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴")
SYLLABLES = ("ac", "ve", "tor", "lum", "nex", "gen", "sys", "dyn", "ora", "bit", "cor", "quan", "tek", "zen")
SUFFIX = ("Inc", "LLC", "GmbH", "Ltd", "Group", "Systems", "Technologies", "Labs", "Holdings")


def _table(weights: dict[str, float]) -> tuple[list[str], list[float]]:
    """Keys and cumulative weights normalised to 1, computed once."""
    keys, cum, total = list(weights), [], sum(weights.values())
    acc = 0.0
    for k in keys:
        acc += weights[k] / total
        cum.append(acc)
    return keys, cum


_COUNTRY = _table({k: v[1] for k, v in COUNTRIES.items()})
_SENIORITY = _table({k: v[1] for k, v in TITLES.items()})
_SOURCE = _table({k: v[0] for k, v in SOURCES.items()})
_BAND = _table({"SMB": 0.5, "MidMarket": 0.3, "Enterprise": 0.2})
_CUE = _table({"1": 0.2, "-1": 0.15, "0": 0.65})
_TIMELINE = _table({"1": 0.2, "-1": 0.2, "0": 0.6})
_NORMAL = NormalDist()
N_UNIFORMS = 40  # uniforms one lead's attributes consume (drawn in bulk by make_leads)


class _U:
    """Hands out one lead's pre-drawn uniforms in order (cheaper than a Random per call)."""

    __slots__ = ("u", "i")

    def __init__(self, u: list[float]) -> None:
        self.u, self.i = u, 0

    def random(self) -> float:
        self.i += 1
        return self.u[self.i - 1]

    def choice(self, seq: Sequence[T]) -> T:
        return seq[int(self.random() * len(seq))]

    def draw(self, table: tuple[list[str], list[float]]) -> str:
        return table[0][min(bisect.bisect_left(table[1], self.random()), len(table[0]) - 1)]

    def gauss(self, mu: float, sigma: float) -> float:
        return mu + sigma * _NORMAL.inv_cdf(self.random())


@dataclass(frozen=True)
class Cues:
    budget: int  # +1 approved, -1 none, 0 not said
    timeline: int  # +1 urgent, -1 exploring / next year, 0 not said
    seats: int  # 0 = not said
    student: bool


def _message_en(rng: _U, c: Cues, company: str) -> str:
    parts = [rng.choice(("Hi,", "Hello,", "Hi team,", "Good morning,"))]
    if c.student:
        parts.append(rng.choice(("I'm just a student working on a thesis about CRM tools.",
                                 "Just a student here, curious how the product works.")))
    else:
        parts.append(rng.choice((f"We at {company} are evaluating tools for our sales team.",
                                 "We're looking for a better way to manage our pipeline.",
                                 "Interested in your platform for our operations.",
                                 "Could you send more information?")))
    if c.seats:
        parts.append(rng.choice((f"Can you share pricing for {c.seats} seats?", f"We'd need about {c.seats} licenses.")))
    if c.budget > 0:
        parts.append(rng.choice(("Budget is approved for this quarter.", "We have budget allocated already.")))
    elif c.budget < 0:
        parts.append(rng.choice(("We don't have budget yet.", "No budget at the moment, just researching.")))
    if c.timeline > 0:
        parts.append(rng.choice(("We need to decide within 30 days.", "Looking to roll out next month, urgent.")))
    elif c.timeline < 0:
        parts.append(rng.choice(("Just exploring options for next year.", "No timeline, just browsing.")))
    parts.append(rng.choice(("Thanks.", "Best regards.", "Please call me.", "")))
    return " ".join(p for p in parts if p)


def _message_zh(rng: _U, c: Cues, company: str) -> str:
    parts = ["您好，"]
    parts.append("我只是个学生，想了解一下产品。" if c.student else f"我们{company}正在为销售团队评估CRM工具。")
    if c.seats:
        parts.append(f"请提供{c.seats}个座位的报价。")
    if c.budget > 0:
        parts.append("本季度预算已经批准。")
    elif c.budget < 0:
        parts.append("目前还没有预算。")
    if c.timeline > 0:
        parts.append("我们需要在30天内做决定。")
    elif c.timeline < 0:
        parts.append("只是了解一下，明年再考虑。")
    parts.append("谢谢。")
    return "".join(parts)


def cue_logit(c: Cues) -> float:
    """How much the message's cues move the true conversion logit."""
    x = 0.9 * max(c.budget, 0) - 0.6 * max(-c.budget, 0) + 0.7 * max(c.timeline, 0) - 0.5 * max(-c.timeline, 0)
    if c.seats:
        x += 0.25 * math.log(c.seats / 10) if c.seats >= 10 else -0.2
    return x - (1.2 if c.student else 0.0)


def make_leads(rng: random.Random, n: int) -> list[tuple[dict[str, Any], str, float, float, list[float]]]:
    """``n`` new leads: (canonical Lead fields, segment, observable logit, latent noise,
    eight uniforms reserved for the lead's outcome). Uniforms are drawn in bulk with numpy
    (seeded from ``rng``), which is what makes preloading 50,000 leads take seconds."""
    if n <= 0:
        return []
    g = np.random.default_rng(rng.getrandbits(64))
    rows = g.random((n, N_UNIFORMS + 8)).tolist()
    return [(*make_lead(_U(r[:N_UNIFORMS])), r[N_UNIFORMS:]) for r in rows]


def lead_state(country: str, email: str) -> str | None:
    """The lead's state/province, or None (other countries, and one lead in five left blank as
    web forms do). A hash of the e-mail picks it, so the world's seeded draws stay as they were."""
    states = STATES.get(country)
    h = zlib.crc32(email.encode("utf-8"))
    if not states or h % 5 == 0:
        return None
    return states[(h // 5) % len(states)]


def make_lead(rng: _U) -> tuple[dict[str, Any], str, float, float]:
    """One new lead: (canonical Lead fields, segment, observable logit, latent noise)."""
    country = rng.draw(_COUNTRY)
    region = COUNTRIES[country][0]
    seniority = rng.draw(_SENIORITY)
    titles, _, title_logit = TITLES[seniority]
    band = rng.draw(_BAND)
    lo, hi = {"SMB": (2, 99), "MidMarket": (100, 999), "Enterprise": (1000, 60000)}[band]
    employees = int(math.exp(math.log(lo) + rng.random() * (math.log(hi + 1) - math.log(lo))))
    revenue = round(employees * math.exp(rng.gauss(math.log(180_000), 0.5)), -3)
    source = rng.draw(_SOURCE)
    student = seniority == "student" or rng.random() < 0.02
    budget, timeline, seat_u = int(rng.draw(_CUE)), int(rng.draw(_TIMELINE)), rng.random()
    cues = Cues(
        budget=budget if not student else -1 * (rng.random() < 0.5),
        timeline=timeline,
        seats=0 if student or seat_u < 0.7 else int(rng.choice((5, 10, 25, 50, 100, 200, 500)) * (1 + (band == "Enterprise"))),
        student=student,
    )
    chinese = (country == "China" and rng.random() < 0.85) or (region == "APAC" and rng.random() < 0.08)
    company = "".join(rng.choice(SYLLABLES) for _ in range(2)).capitalize() + " " + rng.choice(SUFFIX)
    if chinese:
        first, last = rng.choice(CN_FIRST), rng.choice(CN_LAST)
        email = f"{rng.choice(('wang', 'li', 'zhang', 'chen'))}{int(rng.random() * 1000)}@{company.split()[0].lower()}.cn"
        message = _message_zh(rng, cues, company)
    else:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        email = f"{first.lower()}.{last.lower().replace('ü', 'ue')}@{company.split()[0].lower()}.com"
        message = _message_en(rng, cues, company)
    fields = {
        "FirstName": first, "LastName": last, "Title": rng.choice(titles), "Company": company,
        "Industry": rng.choice(INDUSTRIES), "NumberOfEmployees": employees, "AnnualRevenue": revenue,
        "Country": country, "LeadSource": source, "Status": "Open - Not Contacted", "Description": message,
        "Email": email, "IsConverted": False,
    }
    state = lead_state(country, email)
    if state is not None:
        fields["State"] = state
    observable = P.OBSERVABLE_SCALE * (title_logit + SIZE_LOGIT[band] + SOURCES[source][1] + cue_logit(cues))
    return fields, f"{band}/{region}", observable, rng.gauss(0.0, 0.5)
