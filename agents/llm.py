"""One chat call to any OpenAI-compatible endpoint (OpenAI, vLLM, SGLang, Ollama, ...).

The Coder and the Judge talk to models only through :class:`LLMClient`. It owns what every call
needs and nothing else: the endpoint and key (from ``kernelloop.settings`` unless given), retries
with exponential backoff on transient failures, structured-output requests with a fallback for
servers that reject them, and a typed :class:`LLMResult` with tokens, cost and latency for the run
store. The ``openai`` SDK is imported on first use so ``import kernelloop.agents`` stays cheap and
the core never pulls it in.

Retries are ours, not the SDK's (it is built with ``max_retries=0``): the attempt count is part of
the result, and the error after the last attempt must say what to check, in words, not as a raw
SDK exception.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernelloop import settings

from ..errors import KernelloopError
from .pricing import PriceTable

if TYPE_CHECKING:
    import openai

OPENAI_URL = "https://api.openai.com/v1"
PLACEHOLDER_KEY = "unused"  # local servers (vLLM, Ollama) ignore the key, but the SDK needs one
_MAX_WAIT_S = 60.0  # cap on one backoff wait, even when a server asks for longer (retry-after)
_MAX_MESSAGE_CHARS = 500  # server error text kept in LLMError messages


@dataclass(frozen=True)
class LLMConfig:
    model: str
    base_url: str | None = None  # None: settings (KERNELLOOP_BASE_URL, then OPENAI_BASE_URL)
    api_key: str | None = dataclasses.field(default=None, repr=False)  # None: settings
    temperature: float | None = None  # None: the server's default (reasoning models reject it)
    reasoning_effort: str | None = None  # "low" | "medium" | "high"; sent only when set
    # Defaults come from settings (KERNELLOOP_LLM_TIMEOUT, KERNELLOOP_LLM_RETRIES) when the config
    # is made, so the environment applies without every caller passing them.
    timeout_s: float = dataclasses.field(default_factory=lambda: settings.get().llm_timeout_s)
    max_retries: int = dataclasses.field(default_factory=lambda: settings.get().llm_retries)
    backoff_s: float = 1.0  # first wait; doubles each retry


@dataclass
class LLMResult:
    text: str
    model: str  # as the server reported it (often a dated snapshot), else the configured name
    prompt_tokens: int | None  # None: the server sent no usage
    completion_tokens: int | None
    cost_usd: float | None  # None: the model's price is unknown (never 0 for unknown)
    latency_s: float  # wall time of complete(), retries and backoff waits included
    attempts: int  # HTTP requests made, including the successful one
    finish_reason: str | None = None  # "stop", "length" (hit max_tokens), ...

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class LLMError(KernelloopError, RuntimeError):
    """A call that failed for good: retries exhausted, or an error retrying cannot fix.

    The message is meant for a user's terminal: what happened, cleaned of SDK noise, and what to
    check. ``status`` is the HTTP status when there was one; ``attempts`` the requests made.
    """

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class LLMClient:
    """A chat client for one model at one endpoint; safe to share between threads."""

    def __init__(self, config: LLMConfig, prices: PriceTable | None = None) -> None:
        self.config = config
        self.prices = prices if prices is not None else PriceTable.load()
        current = settings.get()
        self.base_url = config.base_url or current.base_url
        api_key = config.api_key or current.api_key
        if not self.base_url and not api_key:
            raise LLMError(
                "no LLM endpoint is configured: set KERNELLOOP_BASE_URL (or pass --base-url) to "
                "an OpenAI-compatible server such as http://localhost:8000/v1, and/or set "
                "KERNELLOOP_API_KEY or OPENAI_API_KEY for api.openai.com"
            )
        self._api_key = api_key or PLACEHOLDER_KEY
        # Flipped once an endpoint rejects response_format / max_tokens, so later calls skip the
        # request that is known to fail.
        self._structured_outputs = True
        self._max_tokens_param = "max_tokens"
        self._sdk: openai.OpenAI | None = None
        self._sdk_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The base URL requests go to (OpenAI's when only a key is configured)."""
        return self.base_url or OPENAI_URL

    def close(self) -> None:
        """Release pooled connections (optional; they also go with the object)."""
        if self._sdk is not None:
            self._sdk.close()
            self._sdk = None

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        json_schema: dict[str, Any] | None = None,
        max_tokens: int | None = None,
    ) -> LLMResult:
        """Send one chat request and return the reply, retrying transient failures.

        ``json_schema`` asks for structured output where the endpoint supports it; the reply is
        still plain text and must be parsed with ``extract.extract_json`` (servers that ignore or
        reject the schema answer in free form). Raises :class:`LLMError` when the call fails.
        """
        import openai

        cfg = self.config
        sdk = self._client()
        start = time.monotonic()
        attempts = 0
        retries = 0
        wait = cfg.backoff_s
        use_schema = json_schema is not None and self._structured_outputs
        tokens_param = self._max_tokens_param
        dropped_schema = switched_tokens = False  # each fallback is tried once per call
        while True:
            request = self._request(messages, json_schema if use_schema else None)
            if max_tokens is not None:
                request[tokens_param] = max_tokens
            attempts += 1
            try:
                response = sdk.chat.completions.create(**request)
            except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
                # OpenAI reasoning models reject max_tokens and name the replacement.
                if (
                    max_tokens is not None
                    and not switched_tokens
                    and tokens_param == "max_tokens"
                    and "max_completion_tokens" in _server_message(e)
                ):
                    tokens_param, switched_tokens = "max_completion_tokens", True
                    continue
                # Endpoints without structured outputs answer 400 (vLLM without a guided decoding
                # backend, older Ollama, proxies): retry once without response_format.
                if use_schema and not dropped_schema:
                    use_schema, dropped_schema = False, True
                    continue
                raise self._error(e, attempts) from e
            except openai.APIStatusError as e:
                if not _retryable_status(e.status_code) or retries >= cfg.max_retries:
                    raise self._error(e, attempts) from e
                retries += 1
                time.sleep(min(max(wait, _retry_after(e)), _MAX_WAIT_S))
                wait *= 2
                continue
            except openai.APIConnectionError as e:  # includes APITimeoutError
                if retries >= cfg.max_retries:
                    raise self._error(e, attempts) from e
                retries += 1
                time.sleep(min(wait, _MAX_WAIT_S))
                wait *= 2
                continue
            except openai.APIError as e:  # e.g. a reply the SDK cannot parse: not transient
                raise self._error(e, attempts) from e
            break
        if dropped_schema:
            self._structured_outputs = False  # the request without it worked: remember that
        self._max_tokens_param = tokens_param
        return self._result(response, attempts, time.monotonic() - start)

    # --- helpers ----------------------------------------------------------------------------
    def _client(self) -> openai.OpenAI:
        with self._sdk_lock:
            if self._sdk is None:
                import openai

                # Both passed explicitly: left out, the SDK reads OPENAI_BASE_URL/OPENAI_API_KEY
                # itself, behind the back of settings (and of settings.override in tests).
                self._sdk = openai.OpenAI(
                    base_url=self.endpoint,
                    api_key=self._api_key,
                    timeout=self.config.timeout_s,
                    max_retries=0,  # retries are counted and reported here
                )
            return self._sdk

    def _request(
        self, messages: list[dict[str, Any]], json_schema: dict[str, Any] | None
    ) -> dict[str, Any]:
        cfg = self.config
        request: dict[str, Any] = {"model": cfg.model, "messages": messages}
        # Only what is set is sent: many servers reject parameters they do not know.
        if cfg.temperature is not None:
            request["temperature"] = cfg.temperature
        if cfg.reasoning_effort:
            request["reasoning_effort"] = cfg.reasoning_effort
        if json_schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": _schema_name(json_schema),
                    "schema": json_schema,
                    "strict": False,  # strict mode demands every key required and no extras
                },
            }
        return request

    def _result(self, response: Any, attempts: int, latency_s: float) -> LLMResult:
        if not getattr(response, "choices", None):
            raise LLMError(
                f"{self.endpoint} answered model {self.config.model!r} with no choices; check "
                "that the server supports /chat/completions for this model",
                attempts=attempts,
            )
        choice = response.choices[0]
        usage = getattr(response, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        model = getattr(response, "model", None) or self.config.model
        # The reported name is the most specific (a dated snapshot); fall back to the configured.
        cost = self.prices.cost(model, prompt, completion)
        if cost is None:
            cost = self.prices.cost(self.config.model, prompt, completion)
        return LLMResult(
            text=choice.message.content or "",
            model=model,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cost_usd=cost,
            latency_s=latency_s,
            attempts=attempts,
            finish_reason=choice.finish_reason,
        )

    def _error(self, e: Exception, attempts: int) -> LLMError:
        """An LLMError saying what failed and what to check, without the SDK's noise."""
        import openai

        where = f"model {self.config.model!r} at {self.endpoint}"
        tries = f" (after {attempts} attempts)" if attempts > 1 else ""
        status = getattr(e, "status_code", None)
        if isinstance(e, openai.APITimeoutError):
            advice = (
                f"no answer within {self.config.timeout_s:g} s{tries}; the server may be "
                "overloaded or the reply very long: raise KERNELLOOP_LLM_TIMEOUT or check the "
                "server"
            )
        elif isinstance(e, openai.APIConnectionError):
            advice = (
                f"could not connect{tries}: is the server running? Check KERNELLOOP_BASE_URL / "
                "--base-url (it usually ends in /v1)"
            )
        elif status in (401, 403):
            advice = (
                f"HTTP {status}: {_server_message(e)}. Check the API key (KERNELLOOP_API_KEY or "
                "OPENAI_API_KEY) is valid for this endpoint"
            )
        elif status == 404:
            advice = (
                f"HTTP 404: {_server_message(e)}. Check the model name and the base URL "
                "(KERNELLOOP_BASE_URL / --base-url; OpenAI-compatible servers serve under /v1)"
            )
        elif status == 429:
            advice = (
                f"rate limited{tries}: {_server_message(e)}. Wait, lower concurrency, or raise "
                "KERNELLOOP_LLM_RETRIES"
            )
        elif status is not None and status >= 500:
            advice = f"server error HTTP {status}{tries}: {_server_message(e)}. Check the server"
        elif status is not None:
            advice = (
                f"the request was rejected (HTTP {status}): {_server_message(e)}. Check the model "
                "name and options (temperature, reasoning_effort, max_tokens) for this endpoint"
            )
        else:
            advice = f"{type(e).__name__}: {_clean(str(e))}"
        return LLMError(f"LLM call to {where} failed: {advice}", status=status, attempts=attempts)


def _retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def _retry_after(e: Any) -> float:
    """Seconds a 429/503 asks us to wait (``retry-after``), else 0."""
    try:
        return float(e.response.headers.get("retry-after", 0))
    except (AttributeError, TypeError, ValueError):
        return 0.0  # absent, or an HTTP date: fall back to our backoff


def _server_message(e: Any) -> str:
    """The server's own error text, from an OpenAI-style body ({"error": {"message": ...}})."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return _clean(str(message))
    text = str(getattr(e, "message", "") or e)
    return _clean(re.sub(r"^Error code: \d+ - ", "", text))


def _clean(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 3] + "..."
    return text or "no details"


def _schema_name(schema: dict[str, Any]) -> str:
    """A response_format name from the schema's title (OpenAI allows [a-zA-Z0-9_-]{1,64})."""
    name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(schema.get("title") or "reply"))
    return name[:64] or "reply"
