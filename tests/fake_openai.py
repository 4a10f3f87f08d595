"""A scripted OpenAI-compatible chat server for tests, over real HTTP on 127.0.0.1.

The LLM client is tested through the real ``openai`` SDK and a real socket, so retries, timeouts,
error bodies and request shapes are exercised the way a vLLM or OpenAI endpoint would exercise
them. Two modes:

    with FakeOpenAI([Reply.error(429), Reply.text("hi", prompt_tokens=12)]) as server:
        ...  # replies are served in order; one more request gets HTTP 500 "script exhausted"

    with FakeOpenAI(responder=lambda request: "```python ...```") as server:
        ...  # every reply is decided from the request (its JSON body)

A script entry (or a responder's return value) may be a :class:`Reply`, a plain ``str`` (a text
completion) or a callable ``(request_json) -> str | Reply``. Every request body is appended to
``server.requests`` (headers to ``server.headers``) before it is answered.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CHAT_PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True)
class Reply:
    """One scripted answer: a completion, an HTTP error, or either of them after a delay."""

    content: str | None = None  # completion text (status 200)
    status: int = 200
    message: str = ""  # error message for status != 200, OpenAI-style body
    delay_s: float = 0.0  # sleep before answering (longer than the client timeout: a timeout)
    prompt_tokens: int | None = None  # None: estimated from the request (4 chars per token)
    completion_tokens: int | None = None
    usage: bool = True  # False: omit "usage", as some servers do
    model: str | None = None  # reported model; None echoes the request's
    finish_reason: str = "stop"
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers, e.g. retry-after
    respond: Callable[[dict[str, Any]], str | Reply] | None = None  # decide from the request

    @classmethod
    def text(cls, content: str, **kwargs: Any) -> Reply:
        return cls(content=content, **kwargs)

    @classmethod
    def error(cls, status: int, message: str = "", **kwargs: Any) -> Reply:
        return cls(status=status, message=message or f"scripted HTTP {status}", **kwargs)

    @classmethod
    def slow(cls, seconds: float, content: str = "too late") -> Reply:
        return cls(content=content, delay_s=seconds)

    @classmethod
    def call(cls, fn: Callable[[dict[str, Any]], str | Reply]) -> Reply:
        return cls(respond=fn)


Scripted = Reply | str | Callable[[dict[str, Any]], str | Reply]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_exceeded",
}


class FakeOpenAI:
    """Serves POST {base_url}/chat/completions from a script or a responder; a context manager."""

    def __init__(
        self,
        script: list[Scripted] | None = None,
        *,
        responder: Callable[[dict[str, Any]], str | Reply] | None = None,
    ) -> None:
        if (script is None) == (responder is None):
            raise ValueError("pass either a script (list of replies) or responder=callable")
        self._script = list(script or [])
        self._responder = responder
        self._served = 0
        self._lock = threading.Lock()
        self._closing = threading.Event()  # wakes delayed replies at shutdown
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        # A short poll interval: shutdown() waits for the serve loop to notice (0.5 s by default).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> FakeOpenAI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    @property
    def remaining(self) -> int:
        """Script entries not served yet (0 in responder mode)."""
        return len(self._script) - self._served if self._responder is None else 0

    # --- deciding a reply -------------------------------------------------------------------
    def _next(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._responder is not None:
                entry: Scripted = self._responder
            elif self._served < len(self._script):
                entry = self._script[self._served]
                self._served += 1
            else:
                n = len(self._script)
                return Reply.error(
                    500,
                    f"FakeOpenAI script exhausted: request {len(self.requests)} arrived after all "
                    f"{n} scripted replies were served; add replies to the script",
                )
        return _resolve(entry, request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

            def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                path = self.path.split("?", 1)[0].rstrip("/")
                if path not in CHAT_PATHS:
                    self._send(404, _error_body(404, f"no route {self.path}; use /v1/chat/..."))
                    return
                try:
                    request = json.loads(body or b"{}")
                except json.JSONDecodeError as e:
                    self._send(400, _error_body(400, f"request body is not JSON: {e}"))
                    return
                with server._lock:
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                reply = server._next(request)
                if reply.delay_s and server._closing.wait(reply.delay_s):
                    return  # shutting down: drop the reply
                if reply.status != 200:
                    payload = _error_body(reply.status, reply.message)
                else:
                    payload = _completion(request, reply)
                self._send(reply.status, payload, reply.headers)

            def _send(self, status: int, payload: dict[str, Any], headers: tuple = ()) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for name, value in headers:
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer

        return Handler


def _resolve(entry: Scripted, request: dict[str, Any]) -> Reply:
    """Turn a script entry into a concrete Reply, calling callables with the request."""
    for _ in range(10):  # a callable may return a Reply that itself defers to a callable
        if isinstance(entry, str):
            return Reply.text(entry)
        if isinstance(entry, Reply) and entry.respond is None:
            return entry
        fn = entry.respond if isinstance(entry, Reply) else entry
        entry = fn(request)  # type: ignore[misc]
    raise RuntimeError("FakeOpenAI: a responder kept returning callables")


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _completion(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    content = reply.content or ""
    prompt_text = "".join(str(m.get("content", "")) for m in request.get("messages", []))
    prompt = reply.prompt_tokens if reply.prompt_tokens is not None else _tokens(prompt_text)
    completion = (
        reply.completion_tokens if reply.completion_tokens is not None else _tokens(content)
    )
    payload: dict[str, Any] = {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": reply.model or request.get("model", "fake-model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
    }
    if reply.usage:
        payload["usage"] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    return payload


def _error_body(status: int, message: str) -> dict[str, Any]:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}
