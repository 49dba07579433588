"""``benchmarks._out.write_json``: the one tail every benchmark ends with."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from benchmarks._out import write_json


def test_given_a_path_in_a_new_folder_when_written_then_the_file_is_the_returned_text_and_a_newline(
        tmp_path: Path) -> None:
    path = tmp_path / "out" / "deeper" / "result.json"
    result = {"leads": 3, "at": datetime(2026, 12, 3, tzinfo=UTC), "message": "本季度预算已经批准"}
    text = write_json(result, path)
    assert path.read_text(encoding="utf-8") == text + "\n"
    assert json.loads(text) == {"leads": 3, "at": "2026-12-03 00:00:00+00:00", "message": "本季度预算已经批准"}
    assert "本季度" in text and text.startswith('{\n  "leads": 3')


def test_given_no_path_when_written_then_the_text_comes_back() -> None:
    assert write_json([1, 2], None) == "[\n  1,\n  2\n]"
