"""Text reasons a rep can read: cue phrases of the lead's own text, in its language, never a
stop-word, a fragment or the lead's own company or person name; at most two per lead.

The leads are the sandbox world's (``sandbox.world.leads``: English and Chinese messages, company
names inside them), carded as the Salesforce connector does (``Title: …\\nCompany: …\\n…``), with
a signature naming the person on every third lead.
"""

from __future__ import annotations

import math
import random
import re

import pytest

from connectors.values import text_card
from sandbox.world import params as P
from sandbox.world.leads import make_leads
from scoring.cues import CueModel
from scoring.ensemble import ModelConfig
from scoring.training import train_scorer

CJK = re.compile(r"[\u4e00-\u9fff]")
QUOTED = re.compile(r'Message: (?:"([^"]+)"|\u201c([^\u201d]+)\u201d) \((?:\+|\u2212)\)')
# Words no reason may quote alone, start or end with: stop-words of both languages, greetings,
# and the card's own field labels.
FORBIDDEN_EN = {"a", "about", "am", "and", "are", "at", "best", "for", "hello", "hi", "i", "in", "is", "just", "me",
                "of", "our", "please", "thanks", "the", "this", "to", "we", "with", "you", "your", "title", "company",
                "industry", "description"}
FORBIDDEN_ZH = {"的", "了", "是", "我", "我们", "您好", "谢谢", "一下", "只是", "请", "个", "在", "们"}
NEGATIONS = {"no", "don't", "not"}


def _sandbox_rows(n: int, seed: int) -> tuple[list[dict], list[int]]:
    rows, labels = [], []
    for k, (fields, _segment, observable, latent, u) in enumerate(make_leads(random.Random(seed), n)):
        chinese = bool(CJK.search(fields["Description"]))
        person = (fields["LastName"] + fields["FirstName"]) if chinese else f"{fields['FirstName']} {fields['LastName']}"
        if k % 3 == 0:
            fields = {**fields, "Description": fields["Description"] + "\n" + person}
        rows.append({"employees": fields["NumberOfEmployees"], "revenue": fields["AnnualRevenue"],
                     "title": fields["Title"], "industry": fields["Industry"], "country": fields["Country"],
                     "source": fields["LeadSource"], "company": fields["Company"],
                     "first_name": fields["FirstName"], "last_name": fields["LastName"],
                     "text": text_card(fields, ("Title", "Company", "Industry", "Description")), "zh": chinese})
        labels.append(int(u[0] < 1 / (1 + math.exp(-(P.BASE_LOGIT + observable + latent)))))
    return rows, labels


@pytest.fixture(scope="module")
def sandbox_scorer():
    rows, labels = _sandbox_rows(700, seed=5)
    scorer, _ = train_scorer(rows[:500], labels[:500], seed=0, config=ModelConfig(folds=3, blend_weights=(0.0,)), refit=False)
    return scorer, rows[500:]


def _cues(reasons: str) -> list[str]:
    return [a or b for a, b in QUOTED.findall(reasons)]


def _words(phrase: str) -> list[str]:
    return re.findall(r"[\u4e00-\u9fff]|[^\W\d_\u4e00-\u9fff]+(?:'[a-z]+)?|\d+", phrase.lower())


def test_given_sandbox_leads_in_two_languages_when_scored_then_text_reasons_are_readable_cues(sandbox_scorer) -> None:
    scorer, rows = sandbox_scorer
    scores = scorer.score(rows)
    with_cue = {"en": 0, "zh": 0}
    for row, score in zip(rows, scores, strict=True):
        assert len(score.reasons) <= 250
        assert score.reasons.count("Message") <= 2, score.reasons  # at most two text reasons
        names = {w.lower() for part in (row["company"], row["first_name"], row["last_name"])
                 for w in re.findall(r"[^\W\d_]+", part) if not CJK.search(w)}
        cjk_names = [row["last_name"] + row["first_name"], row["company"]]
        cues = _cues(score.reasons)
        with_cue["zh" if row["zh"] else "en"] += bool(cues)
        for cue in cues:
            words = _words(cue)
            assert " ".join(cue.split()) in " ".join(row["text"].split()), (cue, row["text"])  # the lead's words
            assert cue.lower() not in FORBIDDEN_EN | FORBIDDEN_ZH and len(words) >= 2, cue
            assert words[0] not in FORBIDDEN_EN | FORBIDDEN_ZH or words[0] in NEGATIONS, cue
            assert words[-1] not in FORBIDDEN_EN | FORBIDDEN_ZH and cue[-2:] not in FORBIDDEN_ZH, cue
            assert cue[:2] not in FORBIDDEN_ZH, cue
            assert not names & set(words) and not any(n in cue for n in cjk_names), (cue, names)
            if row["zh"]:  # a Chinese lead's cue is its Chinese words, in Chinese quotation marks
                assert CJK.search(cue) and f"\u201c{cue}\u201d" in score.reasons, (cue, score.reasons)
            else:
                assert not CJK.search(cue) and f'"{cue}"' in score.reasons, cue
    n_zh = sum(r["zh"] for r in rows)
    assert n_zh >= 15 and with_cue["zh"] >= n_zh // 2, (with_cue, n_zh)
    assert with_cue["en"] >= (len(rows) - n_zh) // 2, with_cue


def test_given_a_cue_holding_the_leads_own_company_name_when_explained_then_it_is_not_quoted(sandbox_scorer) -> None:
    scorer, _ = sandbox_scorer
    text = "Hi, We have budget allocated already. We need to decide within 30 days."
    plain = {"title": "CEO", "source": "Web", "text": text, "company": "Orbit Inc"}
    own = {**plain, "company": "Allocated Systems"}  # the company's own word is in the top cue
    assert "budget allocated" in " ".join(r.text for r in scorer.explain([plain])[0])
    quoted = " ".join(r.text for r in scorer.explain([own])[0] if r.text_cue)
    assert "llocated" not in quoted and "decide within 30 days" in quoted, quoted


def test_given_templated_texts_when_fitting_cues_then_fragments_stop_words_and_names_stay_out() -> None:
    rows, labels = _sandbox_rows(600, seed=2)
    model = CueModel().fit([r["text"] for r in rows], labels)
    phrases = {"".join(k) if CJK.search(k[0]) else " ".join(k) for k in model.weights}
    assert {"本季度预算已经批准", "budget allocated", "no timeline"} <= phrases, sorted(phrases)
    # fragments of longer phrases, a stop-word edge, a company name: never in the vocabulary
    assert not {"季度预算已经批", "预算已", "budget is", "we have budget", "我们需要"} & phrases
    companies = {w.lower() for r in rows for w in r["company"].split()}
    assert not any(companies & set(k) for k in model.weights)
