"""How a benchmark hands back its result: one JSON text, written to ``--json PATH`` when given.

Every benchmark ended the same way (dump, make the folder, write, print) with small drifts
(no folder made, no final newline, ``default=str`` in one and not another); this is the one
tail they share. Import it the way the scripts import each other, with the repository root on
``sys.path``: ``from benchmarks._out import write_json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(result: Any, path: Path | None) -> str:
    """``result`` as indented JSON, written with a final newline to ``path`` (its folder made
    first; None: written nowhere); returns the text, for the script to print.

    Values JSON has no type for (a ``datetime``, a ``Path``) are written as ``str()``, and text
    stays as it is (UTF-8, not ``\\u`` escapes), so a result with a lead's message stays legible."""
    text = json.dumps(result, indent=2, default=str, ensure_ascii=False)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n", encoding="utf-8")
    return text
