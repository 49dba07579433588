"""Feature handling: missing markers, rare/unknown levels, unicode, numbers, huge text."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring.features import MISSING, OTHER, FeatureSpec, Featurizer, is_missing


def _rows() -> list[dict]:
    rows = [{"src": "Google", "n": 10, "t": "budget ok"} for _ in range(12)]
    rows += [{"src": "Café", "n": "1,234", "t": "hello"} for _ in range(12)]  # composed é
    rows += [{"src": "Fax", "n": None, "t": None}, {"src": "Select", "n": "abc", "t": ""},
             {"src": "  ", "n": float("nan"), "t": "   "}, {"n": 5}]
    return rows


SPEC = FeatureSpec(numeric=("n",), categorical=("src",), text=("t",), min_count=10, text_components=2)


@pytest.mark.parametrize("value", [None, float("nan"), "", "   ", "Select", "select", " SELECT "])
def test_given_a_missing_marker_when_checked_then_it_is_missing(value: object) -> None:
    assert is_missing(value)


@pytest.mark.parametrize("value", ["0", 0, "Selected", "No", False])
def test_given_a_real_value_when_checked_then_it_is_not_missing(value: object) -> None:
    assert not is_missing(value)


def test_given_training_rows_when_transformed_then_missing_rare_and_unknown_levels_get_their_codes() -> None:
    f = Featurizer(SPEC)
    train = f.fit_transform(_rows())
    assert f.levels["src"] == ["Google", "Café"]  # "Fax" seen once: pooled
    assert train.codes[:, 0].tolist() == [2] * 12 + [3] * 12 + [OTHER, MISSING, MISSING, MISSING]
    new = f.transform([{"src": "Cafe\u0301"}, {"src": "Never seen"}, {"src": None}, {}])
    # decomposed "é" is the same level after NFC; an unseen level is "other"; absent keys are missing
    assert new.codes[:, 0].tolist() == [3, OTHER, MISSING, MISSING]


def test_given_numbers_as_text_when_transformed_then_parsed_clipped_and_log_scaled() -> None:
    f = Featurizer(SPEC)
    f.fit(_rows())
    out = f.transform([{"n": "1,234"}, {"n": "abc"}, {"n": 1e12}, {"n": 10}])
    assert out.numbers[0, 0] == pytest.approx(math.log1p(1234))
    assert math.isnan(out.numbers[1, 0])
    assert out.numbers[2, 0] == pytest.approx(math.log1p(1234))  # clipped to the training range
    assert out.numbers[3, 0] == pytest.approx(math.log1p(10))
    lin = f.linear(out)
    assert np.isfinite(lin).all()  # missing numbers are imputed (and flagged) for the linear model


def test_given_huge_and_unicode_text_when_transformed_then_rows_are_finite_and_shapes_hold() -> None:
    f = Featurizer(SPEC)
    f.fit(_rows())
    huge = "budget " * 300_000 + "日本語のテキスト 🚀"
    out = f.transform([{"t": huge}, {"t": "ünïcödé ✓"}, {"t": None}])
    assert out.text.shape == (3, 2)
    assert np.isfinite(out.text).all()
    assert np.allclose(out.text[2], f.reference.text[0])  # no text = the reference (empty) text


def test_given_a_spec_when_columns_are_declared_twice_then_it_says_which() -> None:
    with pytest.raises(ValueError, match="declared twice.*src"):
        FeatureSpec(numeric=("src",), categorical=("src",))


def test_given_crm_leads_when_default_spec_then_status_is_left_out_as_leaky() -> None:
    spec = FeatureSpec.for_crm_leads()
    assert "status" not in spec.columns and "text" in spec.text
    assert spec.label("text") == "Message"


def test_given_a_text_model_trained_with_an_encoder_when_transformed_without_it_then_clear_error(
    minilm_encoder,
) -> None:
    f = Featurizer(SPEC)
    f.fit(_rows(), minilm_encoder)
    with pytest.raises(ValueError, match="through encoder .*MiniLM|through encoder"):
        f.transform(_rows())
    out = f.transform([{"t": "we have budget"}], minilm_encoder)
    assert out.text.shape == (1, 2) and np.isfinite(out.text).all()


@pytest.mark.parametrize(("column", "label"), [("lead_source", "Lead source"), ("visits", "Visits"),
                                                ("Total Time Spent on Website", "Total Time Spent on Website")])
def test_given_a_column_without_label_when_labelled_then_readable(column: str, label: str) -> None:
    assert FeatureSpec(numeric=(column,)).label(column) == label
