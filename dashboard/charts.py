"""Plotly figures for the pages, built from page models (:mod:`.views`).

Each builder returns a ``plotly.graph_objects.Figure`` (tests read its traces); :func:`embed`
turns one into a ``<div>`` plus the call that draws it. Pages load plotly.min.js once, from this
server or inlined in a report, never from a CDN. Axis titles carry units.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

_ACCEPTED = "#2e7d32"
_REJECTED = "#c62828"
_PENDING = "#9e9e9e"
_MAIN = "#1f5fa8"
_SECOND = "#8fb3de"


def _figure(title: str, height: int = 320):
    import plotly.graph_objects as go

    fig = go.Figure()
    fig.update_layout(
        template="plotly_white",
        title={"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 15}},
        height=height,
        margin={"l": 60, "r": 20, "t": 48, "b": 50},
        font={"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def embed(fig: Any, div_id: str) -> Markup:
    """The figure as an HTML ``<div>`` + script; Plotly escapes the data it writes into the
    script (``</script>`` in a problem id cannot end it), so the result is safe to mark."""
    html = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return Markup(f'<div class="chart">{html}</div>')


# --- campaign ------------------------------------------------------------------------------------
def fast_p(curve: list[dict], n_problems: int, timed_problems: int | None = None):
    """The fast_p curve: share of problems faster than eager by more than p."""
    import plotly.graph_objects as go

    fig = _figure(f"fast_p over {n_problems} problem{'s' if n_problems != 1 else ''}")
    fig.add_trace(
        go.Scatter(
            x=[c["p"] for c in curve],
            y=[c["share"] for c in curve],
            customdata=[c["count"] for c in curve],
            mode="lines",
            line={"shape": "hv", "color": _MAIN, "width": 2},
            name="fast_p",
            hovertemplate="p = %{x:.2f}x: %{y:.0%} of problems (%{customdata})<extra></extra>",
        )
    )
    fig.add_vline(x=1.0, line={"dash": "dot", "color": "#777"})
    if timed_problems == 0:
        fig.add_annotation(
            text="no problem has an accepted, GPU-timed kernel yet",
            x=1.5, y=0.5, showarrow=False, font={"color": "#5d6778"},
        )  # fmt: skip
    fig.update_xaxes(title="p: speedup threshold vs eager PyTorch (x)", range=[0, 3])
    fig.update_yaxes(title="share of problems", range=[0, 1.05], tickformat=".0%")
    return fig


def spend(problems: list[dict]):
    """Tokens per problem (prompt and completion stacked); the bar label is the USD spend."""
    import plotly.graph_objects as go

    from .render import fmt_usd

    names = [p["problem_id"] for p in problems]
    fig = _figure("Spend per problem")
    for key, label, color in (
        ("prompt_tokens", "prompt tokens", _MAIN),
        ("completion_tokens", "completion tokens", _SECOND),
    ):
        fig.add_trace(
            go.Bar(
                x=names,
                y=[p["spend"][key] for p in problems],
                name=label,
                marker_color=color,
                hovertemplate="%{x}: %{y:,} " + label + "<extra></extra>",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=names,
            y=[p["spend"]["prompt_tokens"] + p["spend"]["completion_tokens"] for p in problems],
            text=[fmt_usd(p["spend"]) for p in problems],
            mode="text",
            textposition="top center",
            cliponaxis=False,
            showlegend=False,
            hoverinfo="skip",
        )
    )
    fig.update_layout(barmode="stack")
    fig.update_yaxes(title="tokens", rangemode="tozero")
    fig.update_xaxes(type="category")
    return fig


# --- problem -------------------------------------------------------------------------------------
def speedup_per_round(timed: list[dict], best_so_far: list[dict]):
    """Each accepted, timed candidate's speedup vs eager with its interval, and the best so far."""
    import plotly.graph_objects as go

    fig = _figure("Speedup vs eager per round")
    fig.add_trace(
        go.Scatter(
            x=[t["round"] for t in timed],
            y=[t["point"] for t in timed],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": [t["high"] - t["point"] for t in timed],
                "arrayminus": [t["point"] - t["low"] for t in timed],
                "color": _SECOND,
            },
            text=[t["candidate_id"] for t in timed],
            mode="markers",
            marker={"color": _MAIN, "size": 9},
            name="accepted candidate (95% interval)",
            hovertemplate="%{text}: %{y:.2f}x<extra></extra>",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[b["round"] for b in best_so_far],
            y=[b["speedup"] for b in best_so_far],
            mode="lines",
            line={"shape": "hv", "color": _ACCEPTED, "dash": "dash"},
            name="best so far",
            hoverinfo="skip",
        )
    )
    fig.add_hline(y=1.0, line={"dash": "dot", "color": "#777"})
    fig.update_xaxes(title="round", dtick=1)
    fig.update_yaxes(title="speedup vs eager (x)", rangemode="tozero")
    return fig


def outcomes_per_round(rounds: list[dict]):
    """Accepted, rejected and pending candidates per round (for runs without GPU timings)."""
    import plotly.graph_objects as go

    fig = _figure("Candidates per round")
    for key, color in (("accepted", _ACCEPTED), ("rejected", _REJECTED), ("pending", _PENDING)):
        fig.add_trace(
            go.Bar(
                x=[r["round"] for r in rounds],
                y=[r[key] for r in rounds],
                name=key,
                marker_color=color,
                hovertemplate="round %{x}: %{y} " + key + "<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title="round", dtick=1)
    fig.update_yaxes(title="candidates", dtick=1, rangemode="tozero")
    return fig


# --- candidate -----------------------------------------------------------------------------------
def timing(t: dict):
    """Median times (ms) of the roofline floor, the candidate and the PyTorch baselines; the
    whiskers span each measurement's interquartile range."""
    import plotly.graph_objects as go

    rows = []
    if t.get("roofline_floor_ms"):
        rows.append(("roofline floor", t["roofline_floor_ms"], None, "#6a6a6a"))
    for key, label, color in (
        ("candidate", "this kernel", _MAIN),
        ("eager", "eager PyTorch", _SECOND),
        ("compiled", "torch.compile", "#b0a0d0"),
    ):
        s = t.get(key)
        if s:
            rows.append((label, s["median"], (s["median"] - s["q1"], s["q3"] - s["median"]), color))
    fig = _figure(f"Time per call on {t['gpu']}", height=260)
    fig.add_trace(
        go.Bar(
            y=[r[0] for r in rows],
            x=[r[1] for r in rows],
            orientation="h",
            marker_color=[r[3] for r in rows],
            error_x={
                "type": "data",
                "symmetric": False,
                "arrayminus": [r[2][0] if r[2] else 0 for r in rows],
                "array": [r[2][1] if r[2] else 0 for r in rows],
            },
            hovertemplate="%{y}: %{x:.4g} ms<extra></extra>",
            showlegend=False,
        )
    )
    fig.update_xaxes(title="median time per call (ms)", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    return fig


# --- per page ------------------------------------------------------------------------------------
def campaign_charts(page: dict) -> dict[str, Markup]:
    return {
        "fast_p": embed(
            fast_p(page["fast_p"], page["scores"]["n_problems"], page["scores"]["timed_problems"]),
            "chart-fast-p",
        ),
        "spend": embed(spend(page["problems"]), "chart-spend"),
    }


def problem_charts(page: dict) -> dict[str, Markup]:
    if page["timed"]:
        fig = speedup_per_round(page["timed"], page["best_so_far"])
    else:
        fig = outcomes_per_round(page["rounds"])
    return {"rounds": embed(fig, "chart-rounds")}


def candidate_charts(page: dict) -> dict[str, Markup]:
    if not page["timing"]:
        return {}
    return {"timing": embed(timing(page["timing"]), "chart-timing")}
