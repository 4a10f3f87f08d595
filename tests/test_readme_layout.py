"""The README's layout table names every top-level folder of the repository, and nothing else."""

from __future__ import annotations

import re
import subprocess

from paths import REPO


def _tracked_folders() -> set[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return {line.split("/")[0] for line in out.splitlines() if "/" in line}


def _layout_folders() -> set[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    first_cells = [row.split("|")[1] for row in section.splitlines() if row.startswith("| `")]
    return {name for cell in first_cells for name in re.findall(r"`([^`/]+)/`", cell)}


def test_the_layout_table_matches_the_folders():
    assert _layout_folders() == _tracked_folders()
