"""The fast reasons path gives what the plain one gives.

A score's reasons evaluate the model on ~50 substituted copies of each lead; the ensemble's
``substituted_logits`` evaluates only the trees a copy's changed column can reach, and the score
path looks for cue phrases only in text columns whose effect can be shown. Both are speed-ups
only: these tests hold them to the plain computation on a model that blends trees and the
logistic model, with numeric, categorical and text columns (English and Chinese messages).
"""

from __future__ import annotations

import numpy as np
import pytest
from test_reasons import _sandbox_rows

from scoring.cues import lead_names
from scoring.ensemble import ModelConfig, _TreeSubsets
from scoring.reasons import contributions, render
from scoring.training import train_scorer


@pytest.fixture(scope="module")
def blended():
    rows, labels = _sandbox_rows(600, seed=11)
    scorer, _ = train_scorer(rows[:450], labels[:450], seed=0,
                             config=ModelConfig(folds=3, blend_weights=(0.5,)), refit=False)
    assert 0 < scorer.ensemble.weight < 1 and scorer.ensemble.trees
    return scorer, rows[450:]


def test_substituted_logits_equal_the_stacked_model(blended):
    scorer, rows = blended
    feats = scorer.features(rows)
    ens, fz = scorer.ensemble, scorer.featurizer
    plain = contributions(fz, lambda f: ens.raw_logit(fz, f), feats, chunk=64)
    fast = contributions(fz, lambda f: ens.raw_logit(fz, f), feats, chunk=64,
                         substituted=lambda part, copies: ens.substituted_logits(fz, part, copies))
    np.testing.assert_allclose(fast, plain, rtol=0, atol=1e-9)
    assert np.abs(plain).max() > 0.1  # the effects are real, not all zero
    # most columns reach only some of the trees: that is where the time goes away
    subsets = _TreeSubsets.of(ens.trees[0], fz)
    assert len(subsets.by_groups) > 1 and frozenset(range(len(fz.spec.columns))) not in subsets.by_groups


def test_score_reasons_equal_the_full_explanation(blended):
    scorer, rows = blended
    scores = scorer.score(rows)
    full = scorer.explain(rows)
    assert [s.reasons for s in scores] == [render(r, scorer.max_reasons_chars) for r in full]
    # the score path skipped text columns of small effect, and the leads still quote cues
    assert sum('"' in s.reasons or "\u201c" in s.reasons for s in scores) > len(rows) // 4
    assert len(lead_names(rows)) == len(rows)
