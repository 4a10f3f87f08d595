"""The dashboards over a run store made by the real pipeline: pages, report, export, a browser.

One small campaign runs once per module (level1/01_relu, 2 rounds, 1 candidate per round: a wrong
kernel, then the Judge's repair advice, then the right one) with the real openai client against
the scripted server on 127.0.0.1 and the real evaluator, exactly as tests/test_campaign.py does.
Every page test reads that run. Page models on inputs a CPU run cannot reach (GPU timings,
hostile strings): tests/test_dashboard_pages.py.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI
from markupsafe import escape
from paths import REPO

from kernelloop.agents import campaign
from kernelloop.agents.state import CampaignOptions
from kernelloop.kernelbench import loader
from kernelloop.runs.store import RunStore

fastapi = pytest.importorskip("fastapi", reason="the dashboard extra is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from kernelloop.dashboard import views  # noqa: E402
from kernelloop.dashboard.app import create_app  # noqa: E402
from kernelloop.dashboard.render import plotly_js  # noqa: E402

ARTIFACTS = REPO / "test-artifacts"
PROBLEM = "level1/01_relu"
RIGHT = (REPO / "kernelbench/problems/level1/solutions/01_relu.py").read_text()
WRONG = RIGHT.replace("tl.maximum(x, 0.0)", "tl.maximum(x, 0.0) + 1.0")  # runs, and is off by one
ADVICE = {
    "error_type": "wrong values",
    "root_cause": "every output is off by one",
    "fix": "remove the + 1.0 from the store",
}
R0, R1 = "level1-01-relu-r0-c0", "level1-01-relu-r1-c0"
assert WRONG != RIGHT, "the solution's store changed: update WRONG"


def _responder():
    coder_calls = []
    lock = threading.Lock()

    def reply(request: dict) -> str:
        if "kernel engineer" in request["messages"][0]["content"]:
            with lock:
                coder_calls.append(1)
                first = len(coder_calls) == 1
            return f"Plan: one pass.\n```python\n{WRONG if first else RIGHT}\n```\n"
        return json.dumps(ADVICE)

    return reply


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished run of the real pipeline, plus the campaign page as it was while running."""
    run_dir = tmp_path_factory.mktemp("runs")
    problem = loader.load_one(PROBLEM)
    options = CampaignOptions(rounds=2, candidates=1)
    live: dict[str, str] = {}
    client = TestClient(create_app(run_dir))

    def progress(problem_id, node, values):
        if "page" not in live and node == "evaluate":  # mid-run: one verdict is in
            store_dir = next(p for p in run_dir.iterdir() if p.is_dir())
            live["page"] = client.get(f"/runs/{store_dir.name}").text

    with FakeOpenAI(responder=_responder()) as server:
        store = campaign.open_store([problem], coder_model="coder-x", judge_model="judge-y",
                                    options=options, base_url=server.base_url,
                                    runs_dir=run_dir, resume=None)  # fmt: skip
        campaign.run(store, [problem], coder_model="coder-x", judge_model="judge-y",
                     options=options, base_url=server.base_url, progress=progress)  # fmt: skip
    store.close()
    return {"dir": run_dir, "id": store.run_id, "live_page": live.get("page")}


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    from kernelloop.library.store import Library

    root = tmp_path_factory.mktemp("library")
    return Library(root / "user", root / "shipped")


@pytest.fixture(scope="module")
def client(run, library):
    return TestClient(create_app(run["dir"], library=library))


def _get(client, url: str, status: int = 200) -> str:
    response = client.get(url)
    assert response.status_code == status, response.text[:2000]
    return response.text


# --- the run the fixture made is what the pages describe ------------------------------------------
def test_the_fixture_run_is_wrong_then_repaired(run):
    with RunStore.open(run["dir"] / run["id"]) as store:
        cands = store.candidates(PROBLEM)
        assert [c.candidate_id for c in cands] == [R0, R1]
        assert cands[0].accepted is False and cands[0].codes == ["WRONG_OUTPUT"]
        assert cands[1].accepted is True and cands[1].parent_id == R0
        assert store.status() == "finished"


def test_campaigns_page_lists_the_run_with_its_scores(client, run):
    html = _get(client, "/")
    assert f'href="/runs/{run["id"]}"' in html
    assert "finished" in html and "100%" in html  # correct: the repaired kernel is verified
    assert "cpu (Triton interpreter)" in html  # where it ran, never passed off as a GPU
    assert "3 unpriced" in html  # the fake models have no price: unknown, not $0
    assert 'http-equiv="refresh"' not in html


def test_campaign_page_has_scores_problems_fast_p_and_spend(client, run):
    html = _get(client, f"/runs/{run['id']}")
    assert f'href="/runs/{run["id"]}/problems/level1/01_relu"' in html
    assert f'href="/runs/{run["id"]}/candidates/{R1}"' in html  # the best candidate
    assert 'id="chart-fast-p"' in html and 'id="chart-spend"' in html
    assert str(escape(views.FAST_P_DEFINITION)) in html  # the definition is stated on the page
    assert '<script src="/static/plotly.min.js">' in html
    assert "cdn" not in html.lower() and 'src="http' not in html
    assert "rounds: 2 done" in html and "coder-x" in html
    assert 'http-equiv="refresh"' not in html  # finished runs do not reload


def test_pages_refresh_while_the_campaign_is_running(run):
    live = run["live_page"]
    assert live is not None, "the progress callback never saw the campaign mid-run"
    assert '<meta http-equiv="refresh" content="5">' in live
    assert "running" in live


def test_problem_page_has_rounds_tree_advice_and_reference(client, run):
    html = _get(client, f"/runs/{run['id']}/problems/{PROBLEM}")
    assert 'id="chart-rounds"' in html
    assert "No GPU timings" in html  # the chart says what it shows instead of speedups
    # The tree: the repair is nested under the kernel it repaired.
    tree = html[html.index('<ul class="tree">') : html.index("Each child was written")]
    assert tree.index(R0) < tree.index("<ul>") < tree.index(R1)
    assert '<span class="rc" title="reason code">WRONG_OUTPUT</span>' in html
    assert "every output is off by one" in html  # the Judge's repair advice
    assert '<span class="nc">Model</span>' in html  # the highlighted reference
    assert "HOLDOUT" not in html  # as the Coder saw it: hold-out sizes stay unseen


def test_rejected_candidate_shows_reasons_trials_advice_and_its_calls(client, run):
    html = _get(client, f"/runs/{run['id']}/candidates/{R0}")
    assert 'id="verdict"' in html and "rejected" in html
    assert "elements outside atol=" in html  # reason messages with the codes
    assert "holdout1-given" in html  # the per-trial table
    assert "No timing: no CUDA GPU here" in html
    assert "On this candidate" in html and "remove the + 1.0 from the store" in html
    assert "level1-01-relu-r0-coder-1" in html and "level1-01-relu-r0-judge-1" in html
    assert "Diff against" not in html  # no parent


def test_repaired_candidate_shows_diff_source_and_the_advice_it_followed(client, run):
    html = _get(client, f"/runs/{run['id']}/candidates/{R1}")
    assert "Every check ran and passed." in html and "accepted" in html
    assert f"Diff against {R0}" in html
    diff = html[html.index(f"Diff against {R0}") :]
    assert "-    y = tl.maximum(x, 0.0) + 1.0" in diff.replace("&#43;", "+")
    assert "What the Coder was told before writing it (round 0)" in html
    assert '<span class="nd">@triton</span><span class="o">.</span>' in html  # highlighted
    assert "Build log" in html


def test_unknown_runs_problems_and_candidates_are_404_pages(client, run):
    assert "No such run" in _get(client, "/runs/nope", 404)
    assert "No such run" in _get(client, "/runs/%2E%2E", 404)
    assert "No such problem" in _get(client, f"/runs/{run['id']}/problems/level9/none", 404)
    assert "No such candidate" in _get(client, f"/runs/{run['id']}/candidates/x", 404)
    assert _get(client, "/no/such/page", 404)


def test_an_unreadable_run_is_listed_not_fatal(run, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(run["dir"] / run["id"], runs / run["id"])
    (runs / "broken").mkdir()
    (runs / "broken" / "run.sqlite").write_text("not a database")
    client = TestClient(create_app(runs))
    html = _get(client, "/")
    assert "unreadable" in html and run["id"] in html
    assert "Unreadable run" in _get(client, "/runs/broken", 500)


def test_plotly_and_css_are_served_from_the_installed_packages(client):
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("application/javascript")
    assert js.text == plotly_js()
    css = client.get("/static/style.css")
    assert css.status_code == 200 and ".badge" in css.text and ".src" in css.text


# --- library -------------------------------------------------------------------------------------
def test_library_page_shows_provenance_and_verification(client, run, library):
    html = _get(client, "/library")
    assert "The library is empty" in html
    from kernelloop.library.manifest import (
        Manifest,
        Provenance,
        Timing,
        Verification,
        entry_id_for,
    )

    source = (run["dir"] / run["id"] / "candidates" / R1 / "source.py").read_text()
    manifest = Manifest(
        entry_id=entry_id_for("relu", source, "sm_90", "float32", "any"),
        op="relu", backend="triton", dtype="float32", bucket="any", arch="sm_90",
        env={"gpu": "NVIDIA H100 80GB HBM3"},
        timing=Timing(median_ms=0.51, iqr_ms=0.004, n=200, eager_ms=1.02),
        speedup_eager=(2.0, 1.96, 2.04), speedup_compile=None,
        provenance=Provenance(problem_id=PROBLEM, run_id=run["id"], candidate_id=R1, size="gpu"),
        verification=Verification(verified_at="2026-01-01T00:00:00+00:00", accepted=False,
                                  codes=("DRIFT",), device="NVIDIA H100 80GB HBM3", stale=True,
                                  stale_reason="re-validation failed"),
        created_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip
    library.add(manifest, source)
    html = _get(client, "/library")
    assert manifest.entry_id in html
    assert f'href="/runs/{run["id"]}/candidates/{R1}"' in html  # provenance links to the run
    assert "stale" in html and "re-validation failed" in html and ">DRIFT<" in html
    assert "2.00x [1.96, 2.04]" in html and "0.51 ms" in html


# --- report and export ---------------------------------------------------------------------------
def test_report_is_one_self_contained_file(run, tmp_path):
    from typer.testing import CliRunner

    from kernelloop.cli import app

    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["report", run["id"], "--run-dir", str(run["dir"]), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text()
    assert plotly_js() in html  # inline, not fetched
    html = html.replace(plotly_js(), "")  # the library's own code names URLs; the page must not
    assert "<script src=" not in html and '<link rel="stylesheet"' not in html
    assert 'src="http' not in html and 'href="http' not in html
    assert 'href="/' not in html  # no links into a server that is not there
    assert PROBLEM in html and R1 in html and str(escape(views.FAST_P_DEFINITION)) in html
    assert 'id="chart-fast-p"' in html and ".badge" in html
    assert 'http-equiv="refresh"' not in html


def test_report_of_an_unknown_run_says_which_runs_exist(run):
    from typer.testing import CliRunner

    from kernelloop.cli import app

    result = CliRunner().invoke(app, ["report", "nope", "--run-dir", str(run["dir"])])
    assert result.exit_code == 2 and run["id"] in result.output


def test_runs_export_json_and_csv(run, tmp_path):
    import csv

    from typer.testing import CliRunner

    from kernelloop.cli import app

    runner = CliRunner()
    args = ["runs", "export", run["id"], "--run-dir", str(run["dir"])]
    result = runner.invoke(app, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["candidate_id"] for r in rows] == [R0, R1]
    assert rows[0]["accepted"] is False and rows[0]["codes"] == ["WRONG_OUTPUT"]
    assert rows[1]["accepted"] is True and rows[1]["parent_id"] == R0
    assert rows[1]["mode"] == "repair" and rows[1]["round"] == 1
    assert rows[0]["coder_call_id"] == "level1-01-relu-r0-coder-1"
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 for r in rows)
    assert all(r["cost_usd"] is None for r in rows)  # unknown price: null, never 0
    assert all(r["median_ms"] is None and r["speedup_eager_low"] is None for r in rows)

    out = tmp_path / "export.csv"
    result = runner.invoke(app, [*args, "--format", "csv", "-o", str(out)])
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(out.open()))
    assert [r["candidate_id"] for r in table] == [R0, R1]
    assert table[0]["accepted"] == "false" and table[0]["codes"] == "WRONG_OUTPUT"
    assert table[1]["cost_usd"] == "" and int(table[1]["prompt_tokens"]) > 0
    assert {"speedup_eager", "speedup_eager_low", "speedup_eager_high"} <= set(table[0])

    bad = runner.invoke(app, [*args, "--format", "xml"])
    assert bad.exit_code == 2 and "csv" in bad.output


def test_dashboard_command_serves_the_run_dir_on_loopback(run, monkeypatch):
    import uvicorn
    from typer.testing import CliRunner

    from kernelloop.cli import app

    seen = {}
    monkeypatch.setattr(
        uvicorn, "run", lambda application, **kw: seen.update(app=application, **kw)
    )
    result = CliRunner().invoke(app, ["dashboard", "--run-dir", str(run["dir"]), "--port", "9"])
    assert result.exit_code == 0, result.output
    assert seen["host"] == "127.0.0.1" and seen["port"] == 9
    assert TestClient(seen["app"]).get(f"/runs/{run['id']}").status_code == 200


# --- in a browser --------------------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(run, library):
    import uvicorn

    port = _free_port()
    app = create_app(run["dir"], library=library)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"
)
def test_browser_renders_the_chart_and_follows_a_candidate_link(run, served):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs pip package playwright")
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    requested: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("request", lambda r: requested.append(r.url))
            page.on("response", lambda r: r.status < 400 or errors.append(f"{r.status} {r.url}"))
            page.goto(f"{served}/runs/{run['id']}")
            # Plotly drew both charts: SVGs with the traces inside the charts' divs (the fast_p
            # line lies flat at 0 here, which a browser reports as an invisible element).
            page.wait_for_selector("#chart-fast-p .main-svg", timeout=20000)
            line = page.locator("#chart-fast-p .scatterlayer .trace path.js-line")
            assert line.count() == 1 and line.get_attribute("d").startswith("M")
            assert page.locator("#chart-spend .barlayer .trace").count() == 2
            assert page.locator("#chart-spend .barlayer path").first.is_visible()
            page.screenshot(path=str(ARTIFACTS / "dashboard-campaign.png"), full_page=True)

            page.click(f"table a[href='/runs/{run['id']}/candidates/{R1}']")
            page.wait_for_url(f"**/candidates/{R1}")
            verdict = page.locator("#verdict")
            assert verdict.locator(".badge.accepted").first.is_visible()
            assert "Every check ran and passed." in verdict.inner_text()
            assert page.locator(".src .nd").first.inner_text() == "@triton"  # highlighted
            page.screenshot(path=str(ARTIFACTS / "dashboard-candidate.png"), full_page=True)

            page.click(f"a[href='/runs/{run['id']}/candidates/{R0}']")
            page.wait_for_url(f"**/candidates/{R0}")
            assert page.locator("#verdict .rc", has_text="WRONG_OUTPUT").first.is_visible()
            page.goto(f"{served}/runs/{run['id']}/problems/{PROBLEM}")
            page.wait_for_selector("#chart-rounds .main-svg", timeout=20000)
            bars = page.locator("#chart-rounds .barlayer .point path").all()
            assert sum(bar.is_visible() for bar in bars) == 2  # r0 rejected, r1 accepted
            page.screenshot(path=str(ARTIFACTS / "dashboard-problem.png"), full_page=True)
        finally:
            browser.close()
    assert not errors, errors
    assert all(url.startswith((served, "data:")) for url in requested), requested
    assert (ARTIFACTS / "dashboard-campaign.png").stat().st_size > 10_000
