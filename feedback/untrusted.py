"""Text a candidate produced, capped and fenced before a model reads it (threat row 28).

A verdict's messages quote what ran in the sandbox: exception text and tracebacks, the worker's
stderr, compiler logs. The candidate controls all of it. It can print whatever the sandbox let
it read, or write instructions aimed at the model that reads the verdict next ("ignore the
rules above..."). Wherever such text enters a prompt it goes through :func:`fence`: at most
``cap`` characters (head and tail kept: the first compiler error, the exception that ended the
run), between delimiters that the text itself cannot forge or close, and headed by what it is.
"""

from __future__ import annotations

import re

BEGIN = "<<<untrusted candidate output"
END = "<<<end>>>"
# What the fenced text may not contain: delimiter runs (a forged END would close the fence
# early; a run of backticks would close the Markdown block a prompt puts it in) and terminal
# control sequences (they can hide text from a person reading the prompt).
_DELIMITER_RUN = re.compile(r"<{3,}|>{3,}|`{3,}")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def fence(text: str, cap: int) -> str:
    """``text`` as untrusted data: cleaned, cut to ``cap`` characters, between delimiters."""
    if cap < 0:
        raise ValueError(f"cap must be >= 0, got {cap}")
    clean = _CONTROL.sub("?", _DELIMITER_RUN.sub(lambda m: " ".join(m.group()), text))
    shown = truncate(clean, cap)
    note = f"{len(text)} chars" + (", truncated" if len(shown) < len(clean) else "")
    return f"{BEGIN} ({note})>>>\n{shown}\n{END}"


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars``, keeping its head and tail around a marker: the head
    holds the first compiler error, the tail the exception that ended the run; the middle is
    mostly repetition. (Every log that reaches an LLM is cut here.)"""
    if max_chars < 0:
        raise ValueError(f"max_chars must be >= 0, got {max_chars}")
    if len(text) <= max_chars:
        return text
    # Sized for the largest count it could report, so the result never passes the cap.
    room = len(_marker(len(text)))
    if max_chars <= room:
        return text[:max_chars]
    keep = max_chars - room
    head = keep // 2
    return text[:head] + _marker(len(text) - keep) + text[len(text) - (keep - head) :]


def _marker(omitted: int) -> str:
    return f"\n[... {omitted} characters cut ...]\n"
