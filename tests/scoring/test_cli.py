"""``leadpilot evaluate | train | model``: the contracts and their error cases (exit 2)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sync.cli import app

runner = CliRunner()
KEYS = {"roc_auc", "pr_auc", "brier", "ece", "lift_top_decile", "n_train", "n_test", "model"}


def _write_csv(path: Path, n: int = 240, sep: str = ",") -> Path:
    from scoring_data import synthetic_leads

    rows, labels = synthetic_leads(n, seed=2)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter=sep)
        w.writerow(["Id", "source", "occupation", "visits", "text", "Converted", "Stage"])
        for i, (r, y) in enumerate(zip(rows, labels, strict=True)):
            w.writerow([i, r["source"], r["occupation"] or "", r["visits"], r["text"], y, "Won" if y else "Lost"])
    return path


@pytest.fixture(scope="module")
def leads_csv(tmp_path_factory) -> Path:
    return _write_csv(tmp_path_factory.mktemp("cli") / "leads.csv")


def _run(*args: str):
    return runner.invoke(app, list(args))


def test_given_a_csv_when_evaluated_then_the_json_contract_is_written(leads_csv, tmp_path) -> None:
    out = tmp_path / "m.json"
    result = _run("evaluate", "--csv", str(leads_csv), "--label", "Stage=Won", "--drop", "Id,Converted",
                  "--test-size", "0.25", "--seed", "0", "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert set(data) == KEYS and (data["n_train"], data["n_test"]) == (180, 60)
    assert 0.5 < data["roc_auc"] <= 1 and "roc_auc" in result.output


def test_given_a_semicolon_csv_when_sep_auto_then_it_is_read(tmp_path) -> None:
    path = _write_csv(tmp_path / "semi.csv", sep=";")
    out = tmp_path / "m.json"
    result = _run("evaluate", "--csv", str(path), "--label", "Converted", "--drop", "Id,Stage", "--json", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["n_test"] == 60


@pytest.mark.parametrize(("args", "message"), [
    (["--label", "Nope"], "label column 'Nope' is not in the file"),
    (["--label", "Converted", "--drop", "Id,Ghost"], "column(s) not in leads.csv: Ghost"),
    (["--label", "Converted", "--text-columns", "Body"], "column(s) not in leads.csv: Body"),
    (["--label", "Stage"], "not 0/1 or true/false"),
    (["--label", "Stage=Pending"], "one class only"),
    (["--label", "Converted", "--sep", "|"], "--sep must be auto"),
])
def test_given_bad_arguments_when_evaluated_then_exit_2_with_a_clear_message(leads_csv, tmp_path, args, message):
    result = _run("evaluate", "--csv", str(leads_csv), *args, "--json", str(tmp_path / "m.json"))
    assert result.exit_code == 2 and message in result.output


def test_given_an_empty_or_headless_file_when_evaluated_then_exit_2(tmp_path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header = tmp_path / "header.csv"
    header.write_text("a,b,Converted\n")
    for path, message in ((empty, "is empty"), (header, "has a header but no rows"),
                          (tmp_path / "absent.csv", "no such file")):
        result = _run("evaluate", "--csv", str(path), "--label", "Converted", "--json", str(tmp_path / "m.json"))
        assert result.exit_code == 2 and message in result.output, result.output


def test_given_a_registry_when_training_and_managing_models_then_list_promote_rollback(leads_csv, tmp_path):
    reg = str(tmp_path / "models")
    for _ in range(2):
        result = _run("train", "--csv", str(leads_csv), "--label", "Converted", "--drop", "Id,Stage",
                      "--registry", reg)
        assert result.exit_code == 0, result.output
    listing = _run("model", "list", "--registry", reg).output
    assert "v0001" in listing and "v0002" in listing and listing.count("*") == 1
    assert _run("model", "promote", "v0001", "--registry", reg).exit_code == 0
    assert _run("model", "promote", "v0002", "--registry", reg).exit_code == 0
    result = _run("model", "rollback", "--registry", reg)
    assert result.exit_code == 0 and "v0001 is the champion" in result.output
    bad = _run("model", "promote", "v0042", "--registry", reg)
    assert bad.exit_code == 2 and "no model version 'v0042'" in bad.output
