"""Where the tests find the repository, computed once.

Test modules import these by name (``from paths import REPO``), as they import
``builtin_support``: pytest puts this folder on ``sys.path`` when it loads ``conftest.py``.
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
CANDIDATES = TESTS / "candidates"
FIXTURES = TESTS / "fixtures"
