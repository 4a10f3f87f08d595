"""The campaign page as one self-contained HTML file, for sharing and CI artifacts.

Same template and charts as the dashboard's campaign page, with the stylesheet and plotly.min.js
inlined (about 5 MB, nothing fetched when it is opened) and links to other dashboard pages
reduced to plain text, since there is no server behind the file. It never refreshes itself.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from ..runs.store import RunStore
from . import charts, reads
from .render import plotly_js, render, stylesheet


def render_report(store: RunStore) -> str:
    page = reads.read_campaign(store)
    return render(
        "campaign.html",
        page=page,
        charts=charts.campaign_charts(page),
        refresh=False,
        standalone=True,
        css=stylesheet(),
        plotly_js=plotly_js(),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def write_report(store: RunStore, output: Path) -> Path:
    """Write the report to ``output`` (atomically: a reader never sees half a file)."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    tmp.write_text(render_report(store), encoding="utf-8")
    os.replace(tmp, output)
    return output
