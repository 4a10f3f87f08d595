"""From page models to HTML: the Jinja2 environment, number filters with units, code highlighting.

Shared by the server (:mod:`.app`) and the self-contained report (:mod:`.report`), so a page and
its exported copy are the same markup. Autoescape is on for every template: run stores hold text
written by an LLM (sources, build logs, reason messages, advice), and none of it may become markup.
The only strings marked safe are made here from escaped input (Pygments output) or by Plotly
(which escapes ``</script>`` in its JSON).
"""

from __future__ import annotations

import functools
import math
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

TEMPLATES = Path(__file__).with_name("templates")
STATIC = Path(__file__).with_name("static")
REFRESH_S = 5  # how often a page of a running campaign reloads itself
PYGMENTS_STYLE = "friendly"


# --- numbers with units ---------------------------------------------------------------------------
def fmt_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g} ms"


def fmt_x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def fmt_interval(iv: dict | None) -> str:
    """A speedup with its confidence bounds: ``1.83x [1.79, 1.88]``."""
    if not iv:
        return "n/a"
    return f"{iv['point']:.2f}x [{iv['low']:.2f}, {iv['high']:.2f}]"


def fmt_usd(value: float | dict | None) -> str:
    """Dollars; a spend dict also says how many calls had no known price (unknown, not free)."""
    if isinstance(value, dict):
        text = f"${value['usd']:.4f}"
        unknown = value.get("usd_unknown_calls") or 0
        if unknown:
            text = f"{text} + {unknown} unpriced call{'s' if unknown != 1 else ''}"
        return text
    return "unknown" if value is None else f"${value:.4f}"


def fmt_pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def fmt_share(value: float | None) -> str:
    """A share from 0 to 1, as a percentage."""
    return "n/a" if value is None else f"{100 * value:.0f}%"


def fmt_int(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def fmt_minutes(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value < 1:
        return f"{value * 60:.0f} s"
    if value < 90:
        return f"{value:.1f} min"
    return f"{int(value // 60)} h {value % 60:.0f} min"


def fmt_seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g} s"


def fmt_when(ts: str | None) -> str:
    """A stored ISO timestamp as ``2026-01-31 12:00:05 UTC``."""
    if not ts:
        return "n/a"
    try:
        return datetime.fromisoformat(ts).strftime("%Y-%m-%d %H:%M:%S UTC")
    except ValueError:
        return ts


def fmt_num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.{digits}g}"


FILTERS = {
    "ms": fmt_ms,
    "x": fmt_x,
    "interval": fmt_interval,
    "usd": fmt_usd,
    "pct": fmt_pct,
    "share": fmt_share,
    "count": fmt_int,
    "minutes": fmt_minutes,
    "seconds": fmt_seconds,
    "when": fmt_when,
    "num": fmt_num,
}


# --- links (one place that knows the URL layout) -------------------------------------------------
def run_url(run_id: str) -> str:
    return f"/runs/{quote(run_id, safe='')}"


def problem_url(run_id: str, problem_id: str) -> str:
    # Problem ids hold slashes (level1/01_relu); the route takes the rest of the path.
    return f"{run_url(run_id)}/problems/{quote(problem_id, safe='/')}"


def candidate_url(run_id: str, candidate_id: str) -> str:
    return f"{run_url(run_id)}/candidates/{quote(candidate_id, safe='')}"


def report_url(run_id: str) -> str:
    return f"{run_url(run_id)}/report.html"


GLOBALS = {
    "run_url": run_url,
    "problem_url": problem_url,
    "candidate_url": candidate_url,
    "report_url": report_url,
    "refresh_s": REFRESH_S,
}


# --- code ----------------------------------------------------------------------------------------
def highlight(source: str, language: str = "python") -> Markup:
    """Source as highlighted, escaped HTML with line numbers."""
    from pygments import highlight as pyg_highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import get_lexer_by_name

    lexer = get_lexer_by_name(language, stripnl=False, ensurenl=True)
    formatter = HtmlFormatter(cssclass="src", linenos="table" if language != "diff" else False)
    return Markup(pyg_highlight(source, lexer, formatter))


@functools.cache
def stylesheet() -> str:
    """The page CSS plus the highlighting colours, one text (served, or inlined in a report)."""
    from pygments.formatters import HtmlFormatter

    css = (STATIC / "style.css").read_text(encoding="utf-8")
    colours = HtmlFormatter(style=PYGMENTS_STYLE).get_style_defs(".src")
    # The page's own background for code blocks, after the style's (which sets a grey one).
    return f"{css}\n{colours}\n.src {{ background: var(--card); }}\n"


@functools.cache
def plotly_js() -> str:
    """plotly.min.js from the installed ``plotly`` package: pages never load it from a CDN."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


# --- templates -----------------------------------------------------------------------------------
@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template is HTML; see the module docstring
        undefined=jinja2.StrictUndefined,  # a misspelt field fails a test, not a page silently
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(FILTERS)
    env.filters["highlight"] = highlight
    env.globals.update(GLOBALS)
    return env


def render(template: str, **context: Any) -> str:
    """Render one page. ``standalone=True`` inlines CSS and Plotly and drops links to the server."""
    context.setdefault("standalone", False)
    return environment().get_template(template).render(**context)
