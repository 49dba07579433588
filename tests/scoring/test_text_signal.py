"""The supervised text signal: out-of-fold on training rows, character n-grams carry Chinese,
and the Featurizer stacks it as one more column of the text block."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from scoring.feature_spec import FeatureSpec
from scoring.features import Featurizer
from scoring.text_signal import TextSignal

_ZH_POS = ["本季度预算已经批准。", "我们需要在30天内做决定。"]
_ZH_NEG = ["目前还没有预算。", "只是了解一下，明年再考虑。"]


def _zh_texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Chinese messages whose cue decides the label 85 % of the time; company names are noise."""
    rng = np.random.default_rng(seed)
    texts, y = [], []
    for i in range(n):
        label = int(rng.random() < 0.4)
        cue_pos = label if rng.random() < 0.85 else 1 - label
        cue = rng.choice(_ZH_POS if cue_pos else _ZH_NEG)
        texts.append(f"您好，我们公司{i}正在评估CRM工具。{cue}谢谢。")
        y.append(label)
    return texts, np.array(y)


def test_given_chinese_cues_then_character_ngrams_rank_new_leads() -> None:
    texts, y = _zh_texts(400, seed=1)
    signal = TextSignal(seed=0)
    oof = signal.fit_oof(texts, None, y)
    new_texts, new_y = _zh_texts(300, seed=2)
    assert roc_auc_score(y, oof) > 0.8
    assert roc_auc_score(new_y, signal.transform(new_texts, None)) > 0.8


def test_given_texts_that_only_memorise_then_out_of_fold_scores_carry_nothing() -> None:
    # labels are coin flips: whatever the model fits of the texts' shared character n-grams is
    # noise, and out of fold that noise does not rank the held-out rows
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.5).astype(int)
    texts = [f"ref{i:04d}x ref{i:04d}x" for i in range(300)]
    signal = TextSignal(seed=0)
    oof = signal.fit_oof(texts, None, y)
    assert abs(roc_auc_score(y, oof) - 0.5) < 0.1


def test_given_too_few_leads_then_the_signal_is_a_constant_zero() -> None:
    signal = TextSignal(seed=0)
    assert not np.any(signal.fit_oof(["a b", "c d"] * 10, None, np.array([0, 1] * 10)))
    assert not np.any(signal.transform(["a b"], None))


@pytest.mark.parametrize("labels", [True, False])
def test_given_labels_then_the_featurizer_adds_one_text_column_and_old_models_still_transform(labels: bool) -> None:
    texts, y = _zh_texts(200, seed=3)
    rows = [{"size": float(i % 7), "text": t} for i, t in enumerate(texts)]
    spec = FeatureSpec(numeric=("size",), categorical=(), text=("text",), text_components=4)
    featurizer = Featurizer(spec, seed=0)
    feats = featurizer.fit_transform(rows, None, y if labels else None)
    assert feats.text.shape[1] == 4 + labels and featurizer.text_slice(0) == (0, 4 + labels)
    again = featurizer.transform(rows[:5])
    assert again.text.shape == (5, 4 + labels) and featurizer.reference is not None
    assert featurizer.reference.text.shape == (1, 4 + labels)
    # a model saved before the signal existed keeps a (tfidf, pca) pair
    tfidf, pca, *_ = featurizer.text_models["text"]
    featurizer.text_models["text"] = (tfidf, pca)
    assert featurizer.transform(rows[:5]).text.shape == (5, 4) and featurizer.text_slice(0) == (0, 4)


def test_given_vectors_and_coin_flip_labels_then_the_stacked_signal_is_out_of_fold_at_both_levels() -> None:
    # 64 free dimensions per lead let the vector base memorise 300 leads; if a stacked training
    # score were fitted on rows it saw, it would rank them far above chance
    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.5).astype(int)
    vectors = rng.normal(size=(300, 64))
    texts = [f"ref{i:04d}x" for i in range(300)]
    signal = TextSignal(seed=0)
    oof = signal.fit_oof(texts, vectors, y)
    assert set(signal.report) == {"ngrams", "vector", "stack_weights"}
    assert abs(roc_auc_score(y, oof) - 0.5) < 0.1
    assert roc_auc_score(y, signal.transform(texts, vectors)) > 0.7  # the refitted bases did see them


def test_given_a_cue_then_each_base_takes_a_c_from_its_grid_by_out_of_fold_log_loss() -> None:
    texts, y = _zh_texts(300, seed=4)
    vectors = np.column_stack([y + np.random.default_rng(0).normal(0, 2.0, len(y)), np.zeros(len(y))])
    signal = TextSignal(seed=0, grid={"ngrams": (0.01, 1.0), "vector": (0.001, 0.1)})
    signal.fit_oof(texts, vectors, y)
    for base, grid in (("ngrams", (0.01, 1.0)), ("vector", (0.001, 0.1))):
        losses = signal.report[base]["oof_logloss_by_c"]
        assert set(losses) == {str(c) for c in grid}
        assert signal.report[base]["c"] == min(grid, key=lambda c: losses[str(c)])
    assert signal.report["stack_weights"]["ngrams"] > 0  # the cue's base carries weight


def test_given_a_signal_pickled_before_the_two_bases_then_it_still_scores() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, y = _zh_texts(200, seed=5)
    words = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3)).fit(texts)
    lr = LogisticRegression().fit(words.transform(texts), y)
    old = TextSignal.__new__(TextSignal)
    old.__dict__.update({"folds": 5, "c": 1.0, "seed": 0, "_model": ([words], lr), "_with_vectors": False})
    np.testing.assert_allclose(old.transform(texts[:3], None), lr.decision_function(words.transform(texts[:3])))
    empty = TextSignal.__new__(TextSignal)
    empty.__dict__.update({"folds": 5, "c": 1.0, "seed": 0, "_model": None, "_with_vectors": False})
    assert not np.any(empty.transform(texts[:3], None))
