"""The LLM client through the real openai SDK, over HTTP, against a scripted local server."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest
from fake_openai import FakeOpenAI, Reply

from kernelloop import settings
from kernelloop.agents.extract import REPAIR_SCHEMA, extract_json
from kernelloop.agents.llm import LLMClient, LLMConfig, LLMError, LLMResult
from kernelloop.agents.pricing import BUNDLED, Price, PriceTable

PRICES = PriceTable({"test-model": (1.0, 2.0)})  # USD per 1M prompt / completion tokens
MESSAGES = [{"role": "user", "content": "write a kernel"}]


@pytest.fixture(autouse=True)
def no_endpoint_from_env():
    """Tests must never reach an endpoint configured in the developer's environment."""
    with settings.override(base_url=None, api_key=None, prices_path=None):
        yield


def client(server: FakeOpenAI, model: str = "test-model", **config) -> LLMClient:
    defaults = dict(base_url=server.base_url, api_key="sk-test", timeout_s=5.0, backoff_s=0.01)
    return LLMClient(LLMConfig(model=model, **{**defaults, **config}), prices=PRICES)


def test_completion_records_tokens_cost_and_request():
    with FakeOpenAI([Reply.text("hello", prompt_tokens=1000, completion_tokens=500)]) as server:
        result = client(server).complete(MESSAGES)
    assert result.text == "hello"
    assert (result.prompt_tokens, result.completion_tokens) == (1000, 500)
    assert result.cost_usd == pytest.approx((1000 * 1.0 + 500 * 2.0) / 1e6)
    assert result.attempts == 1 and result.latency_s > 0 and result.finish_reason == "stop"
    assert result.model == "test-model"
    (request,) = server.requests
    assert request["model"] == "test-model" and request["messages"] == MESSAGES
    # Unset options are not sent: many servers reject parameters they do not know.
    assert not {"temperature", "reasoning_effort", "response_format", "max_tokens"} & set(request)
    assert server.headers[0]["authorization"] == "Bearer sk-test"
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()
    assert LLMResult(**result.to_dict()) == result


def test_options_are_sent_when_set():
    with FakeOpenAI(["ok"]) as server:
        llm = client(server, temperature=0.2, reasoning_effort="high")
        llm.complete(MESSAGES, max_tokens=64)
    request = server.requests[0]
    assert request["temperature"] == 0.2
    assert request["reasoning_effort"] == "high"
    assert request["max_tokens"] == 64


def test_unknown_model_costs_none_not_zero():
    with FakeOpenAI([Reply.text("hi", prompt_tokens=10, completion_tokens=5)]) as server:
        result = client(server, model="my-local-qwen").complete(MESSAGES)
    assert result.cost_usd is None
    assert (result.prompt_tokens, result.completion_tokens) == (10, 5)


def test_missing_usage_costs_none():
    with FakeOpenAI([Reply.text("hi", usage=False)]) as server:
        result = client(server).complete(MESSAGES)
    assert result.prompt_tokens is None and result.cost_usd is None


def test_dated_snapshot_reported_by_server_is_priced_by_prefix():
    prices = PriceTable({"gpt-4.1-mini": (0.4, 1.6)})
    reply = Reply.text("hi", model="gpt-4.1-mini-2025-04-14", prompt_tokens=10**6)
    with FakeOpenAI([reply]) as server:
        cfg = LLMConfig("gpt-4.1-mini", base_url=server.base_url, api_key="k")
        result = LLMClient(cfg, prices=prices).complete(MESSAGES)
    assert result.model == "gpt-4.1-mini-2025-04-14"
    assert result.cost_usd == pytest.approx(0.4 + result.completion_tokens * 1.6 / 1e6)


def test_rate_limit_then_success_is_retried():
    with FakeOpenAI([Reply.error(429, "slow down"), "done"]) as server:
        result = client(server).complete(MESSAGES)
    assert result.text == "done" and result.attempts == 2
    assert len(server.requests) == 2


def test_server_errors_are_retried_with_backoff():
    with FakeOpenAI([Reply.error(500), Reply.error(503), "done"]) as server:
        result = client(server, backoff_s=0.05).complete(MESSAGES)
    assert result.attempts == 3
    assert result.latency_s >= 0.05 + 0.10  # waited 0.05 s, then twice that


def test_retries_exhausted_raise_with_the_server_message():
    script = [Reply.error(429, "quota exceeded for org")] * 3
    with FakeOpenAI(script) as server:
        with pytest.raises(LLMError) as err:
            client(server, max_retries=2).complete(MESSAGES)
    assert err.value.status == 429 and err.value.attempts == 3
    assert "quota exceeded for org" in str(err.value)
    assert "KERNELLOOP_LLM_RETRIES" in str(err.value)
    assert "Error code" not in str(err.value)  # the SDK's prefix is cleaned away


def test_slow_reply_times_out_is_retried_then_fails():
    with FakeOpenAI([Reply.slow(2.0), Reply.slow(2.0)]) as server:
        llm = client(server, timeout_s=0.2, max_retries=1)
        with pytest.raises(LLMError) as err:
            llm.complete(MESSAGES)
    assert len(server.requests) == 2 and err.value.attempts == 2
    assert "KERNELLOOP_LLM_TIMEOUT" in str(err.value)


def test_timeout_then_success():
    with FakeOpenAI([Reply.slow(2.0), "made it"]) as server:
        result = client(server, timeout_s=0.2).complete(MESSAGES)
    assert result.text == "made it" and result.attempts == 2


@pytest.mark.parametrize("status, hint", [(400, "model name"), (401, "KERNELLOOP_API_KEY")])
def test_client_errors_are_not_retried(status, hint):
    with FakeOpenAI([Reply.error(status, "nope: unknown thing"), "never"]) as server:
        with pytest.raises(LLMError) as err:
            client(server).complete(MESSAGES)
    assert len(server.requests) == 1 and err.value.attempts == 1
    assert err.value.status == status
    assert "nope: unknown thing" in str(err.value) and hint in str(err.value)


def test_not_found_points_at_model_and_base_url():
    with FakeOpenAI([Reply.error(404, "model gpt-9 does not exist")]) as server:
        with pytest.raises(LLMError, match="KERNELLOOP_BASE_URL") as err:
            client(server).complete(MESSAGES)
    assert "gpt-9" in str(err.value)


def test_structured_output_is_requested():
    answer = json.dumps({"error_type": "compile", "root_cause": "x", "fix": "y"})
    with FakeOpenAI([answer]) as server:
        result = client(server).complete(MESSAGES, json_schema=REPAIR_SCHEMA)
    fmt = server.requests[0]["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"] == {"name": "judge_repair", "schema": REPAIR_SCHEMA, "strict": False}
    assert extract_json(result.text, REPAIR_SCHEMA)["error_type"] == "compile"


def test_structured_output_falls_back_when_rejected_and_remembers():
    answer = '{"error_type": "compile", "root_cause": "x", "fix": "y"}'
    rejected = Reply.error(400, "response_format json_schema is not supported")
    with FakeOpenAI([rejected, answer, answer]) as server:
        llm = client(server)
        first = llm.complete(MESSAGES, json_schema=REPAIR_SCHEMA)
        second = llm.complete(MESSAGES, json_schema=REPAIR_SCHEMA)
    assert first.attempts == 2 and second.attempts == 1
    assert "response_format" in server.requests[0]
    assert "response_format" not in server.requests[1]
    assert "response_format" not in server.requests[2]  # remembered for this client


def test_structured_output_fallback_is_tried_once():
    rejected = Reply.error(400, "bad request")
    with FakeOpenAI([rejected, rejected, "never"]) as server:
        with pytest.raises(LLMError):
            client(server).complete(MESSAGES, json_schema=REPAIR_SCHEMA)
    assert len(server.requests) == 2


def test_max_tokens_switches_to_max_completion_tokens_when_asked():
    rejected = Reply.error(
        400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
        "Use 'max_completion_tokens' instead."
    )  # fmt: skip
    with FakeOpenAI([rejected, "ok", "ok"]) as server:
        llm = client(server)
        llm.complete(MESSAGES, max_tokens=100)
        llm.complete(MESSAGES, max_tokens=100)
    assert server.requests[0]["max_tokens"] == 100
    assert server.requests[1]["max_completion_tokens"] == 100
    assert "max_tokens" not in server.requests[1]
    assert "max_completion_tokens" in server.requests[2]


def test_retry_after_header_is_honoured():
    limited = Reply.error(429, "wait", headers=(("retry-after", "0.3"),))
    with FakeOpenAI([limited, "ok"]) as server:
        result = client(server).complete(MESSAGES)
    assert result.latency_s >= 0.3


def test_connection_refused_is_retried_then_names_the_base_url():
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = LLMConfig("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.01)
    with pytest.raises(LLMError, match="KERNELLOOP_BASE_URL") as err:
        LLMClient(cfg, prices=PRICES).complete(MESSAGES)
    assert err.value.attempts == 2 and err.value.status is None


def test_no_endpoint_configured_says_what_to_set():
    with pytest.raises(LLMError) as err:
        LLMClient(LLMConfig("gpt-4.1"))
    message = str(err.value)
    assert "KERNELLOOP_BASE_URL" in message and "--base-url" in message
    assert "KERNELLOOP_API_KEY" in message and "OPENAI_API_KEY" in message
    # A key alone means OpenAI itself (nothing is sent here).
    assert LLMClient(LLMConfig("gpt-4.1", api_key="k")).endpoint == "https://api.openai.com/v1"


def test_endpoint_key_and_limits_come_from_settings():
    with FakeOpenAI(["ok"]) as server:
        with settings.override(base_url=server.base_url, llm_timeout_s=7.0, llm_retries=2):
            cfg = LLMConfig("test-model")
            llm = LLMClient(cfg, prices=PRICES)
            llm.complete(MESSAGES)
    assert (cfg.timeout_s, cfg.max_retries) == (7.0, 2)
    # No key configured, but a base URL is: local servers get a placeholder key.
    assert server.headers[0]["authorization"] == "Bearer unused"


def test_script_exhausted_fails_loudly():
    with FakeOpenAI(["one"]) as server:
        llm = client(server, max_retries=0)
        llm.complete(MESSAGES)
        with pytest.raises(LLMError, match="script exhausted"):
            llm.complete(MESSAGES)


def test_responder_mode_routes_by_request():
    def route(request):
        system = request["messages"][0]["content"]
        return "coder reply" if "Coder" in system else Reply.text("judge reply", model="judge-x")

    with FakeOpenAI(responder=route) as server:
        llm = client(server)
        coder = llm.complete([{"role": "system", "content": "You are the Coder"}])
        judge = llm.complete([{"role": "system", "content": "You are the Judge"}])
    assert (coder.text, judge.text, judge.model) == ("coder reply", "judge reply", "judge-x")
    assert server.remaining == 0 and len(server.requests) == 2


def test_second_server_path_without_v1():
    with FakeOpenAI(["plain"]) as server:
        cfg = LLMConfig("m", base_url=f"http://127.0.0.1:{server.port}", backoff_s=0.01)
        assert LLMClient(cfg, prices=PRICES).complete(MESSAGES).text == "plain"


# --- pricing ------------------------------------------------------------------------------------
def test_price_lookup_exact_then_longest_prefix_at_a_boundary():
    table = PriceTable({"gpt-4o": (2.5, 10), "gpt-4o-mini": (0.15, 0.6), "o3": (2, 8)})
    assert table.lookup("gpt-4o") == Price(2.5, 10)
    assert table.lookup("gpt-4o-mini-2024-07-18") == Price(0.15, 0.6)
    assert table.lookup("gpt-4o-2024-08-06") == Price(2.5, 10)
    assert table.lookup("GPT-4o") == Price(2.5, 10)
    assert table.lookup("o3x") is None  # a prefix must end at a name boundary
    assert table.lookup("o3-2025-04-16") == Price(2, 8)
    assert table.cost("gpt-4o", 2_000_000, 1_000_000) == pytest.approx(15.0)
    assert table.cost("gpt-4o", None, 10) is None
    assert table.cost("llama-3-70b", 10, 10) is None


def test_bundled_prices_load_and_note_is_ignored():
    raw = json.loads(BUNDLED.read_text())
    assert "KERNELLOOP_PRICES" in raw["_note"]
    table = PriceTable.load()
    assert table.source == str(BUNDLED)
    assert "_note" not in table
    dated = table.cost("gpt-4.1-mini-2025-04-14", 1000, 1000)
    assert dated == table.cost("gpt-4.1-mini", 1000, 1000) and dated > 0


def test_prices_path_from_settings_overrides_bundled(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"_note": "mine", "house-model": {"prompt": 1, "completion": 1}}')
    with settings.override(prices_path=path):
        table = PriceTable.load()
    assert "house-model" in table and "gpt-4.1" not in table


def test_bad_price_file_says_which_entry(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"m": {"prompt": 1}}')
    with pytest.raises(ValueError, match="entry 'm'"):
        PriceTable.load(path)
    with pytest.raises(FileNotFoundError, match="KERNELLOOP_PRICES"):
        PriceTable.load(tmp_path / "missing.json")


def test_importing_agents_llm_does_not_import_openai():
    code = (
        "import sys, kernelloop.agents.llm, kernelloop.agents.prompts, kernelloop.agents.extract;"
        "print('openai' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
