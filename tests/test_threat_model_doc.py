"""docs/threat-model.md keeps up with the code: every threat row that code or tests cite by number
("threat row 7", "rows 3, 6", a test named ``r17_*``) has a line in its attacker-class table."""

from __future__ import annotations

import os
import re

from paths import REPO, TESTS

DOC = REPO / "docs" / "threat-model.md"
# Not kernelloop's own code: hidden folders (.venv, .triton), build and run output, and the
# problem files under tests/fixtures, written as others write them.
SKIP = {"runs", "test-artifacts", "build", "dist", "__pycache__", "node_modules"}
SKIP_UNDER = {str(TESTS / "fixtures")}
THIS = str(TESTS / "test_threat_model_doc.py")

# "row 18", "Row 16", "threat rows 13 and 15", "rows 3, 6, 8", "Rows 3/6"
CITED = re.compile(r"\brows?\s+(\d+(?:\s*(?:,|/|,?\s+and)\s*\d+)*)", re.IGNORECASE)
TEST_NAME = re.compile(r"\br(\d{2})_[a-z]")
TABLE_ROW = re.compile(r"^\|\s*(\d+(?:\s*,\s*\d+)*)\s*\|", re.MULTILINE)


def _python_files():
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".") and d not in SKIP and os.path.join(folder, d) not in SKIP_UNDER
        ]
        for name in files:
            path = os.path.join(folder, name)
            if name.endswith(".py") and path != THIS:  # this file's examples cite nothing
                yield path


def _cited_rows() -> dict[int, str]:
    """Each cited row number, with one place that cites it (for the failure message)."""
    cited: dict[int, str] = {}
    for path in _python_files():
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        rel = os.path.relpath(path, REPO)
        numbers = [int(n) for m in CITED.finditer(text) for n in re.findall(r"\d+", m.group(1))]
        if rel.startswith("tests" + os.sep):
            numbers += [int(n) for n in TEST_NAME.findall(text)]
            numbers += [int(n) for n in TEST_NAME.findall(os.path.basename(path))]
        for n in numbers:
            cited.setdefault(n, rel)
    return cited


def _table_rows() -> set[int]:
    text = DOC.read_text()
    start = text.index("## The attacker classes")
    end = text.index("\n## ", start + 1)
    return {int(n) for m in TABLE_ROW.finditer(text[start:end]) for n in m.group(1).split(",")}


def test_every_cited_threat_row_has_a_line_in_the_threat_model():
    cited = _cited_rows()
    assert cited, "found no citations at all: the pattern or the walk is broken"
    missing = {n: where for n, where in cited.items() if n not in _table_rows()}
    assert not missing, (
        "docs/threat-model.md's attacker-class table has no line for these rows (row: a file "
        f"citing it): {dict(sorted(missing.items()))}. Add a line with the class from "
        "shared/docs/evaluator-threats.md, the layer that stops it and the tests that prove it."
    )
