"""Getting a solution file or a JSON verdict out of a model's free-form reply.

Models wrap code in prose, repeat a draft before the final version, forget a closing fence, or put
JSON in a fenced block even when told not to. The rules here are tolerant about form and strict
about content: the solution is the last *complete* fenced Python block that defines ``ModelNew``;
the JSON is the first of (whole reply, last json block, last ``{...}`` object) that matches the
schema. ``ExtractionError`` messages are short and addressed to the model, because the caller shows
them to it on retry.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import KernelloopError

_OPEN = re.compile(r"^ {0,3}(?P<fence>`{3,}|~{3,})\s*(?P<lang>[^\s`]*)[^`]*$")
_PYTHON_LANGS = {"", "python", "py", "python3"}
_JSON_LANGS = {"json", "jsonc", "json5"}
_MODELNEW = re.compile(r"^\s*class\s+ModelNew\b", re.MULTILINE)

# The two Judge modes' replies. Kept small: extract_json validates this subset of JSON Schema
# itself (type, required, properties, items, enum, minLength, minItems).
REPAIR_SCHEMA: dict[str, Any] = {
    "title": "judge_repair",
    "type": "object",
    "properties": {
        "error_type": {"type": "string", "minLength": 1},
        "root_cause": {"type": "string", "minLength": 1},
        "fix": {"type": "string", "minLength": 1},
    },
    "required": ["error_type", "root_cause", "fix"],
}
OPTIMIZE_SCHEMA: dict[str, Any] = {
    "title": "judge_optimize",
    "type": "object",
    "properties": {
        "bottleneck": {"type": "string", "minLength": 1},
        "evidence": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "metric": {"type": "string", "minLength": 1},
                    "value": {"type": ["number", "string"]},
                    "unit": {"type": "string"},
                },
                "required": ["metric", "value", "unit"],
            },
        },
        "change": {"type": "string", "minLength": 1},
        "expected_effect": {"type": "string", "minLength": 1},
    },
    "required": ["bottleneck", "evidence", "change", "expected_effect"],
}


class ExtractionError(KernelloopError, ValueError):
    """The reply held no usable code or JSON; the message says what to send instead."""


def fenced_blocks(reply: str) -> list[tuple[str, str]]:
    """``(language, body)`` of every complete fenced block, in order; unclosed ones are dropped.

    A block closes at a line holding only the same fence character, at least as many times as it
    opened (CommonMark), so a ```` ```cuda ```` block inside prose does not end a Python block.
    """
    blocks: list[tuple[str, str]] = []
    lines = reply.splitlines()
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group("fence"), m.group("lang").lower()
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        for j in range(i + 1, len(lines)):
            if close.match(lines[j]):
                blocks.append((lang, "\n".join(lines[i + 1 : j])))
                i = j + 1
                break
        else:
            break  # unterminated: nothing after its opening fence is a complete block
    return blocks


def extract_code(reply: str) -> str | None:
    """The last complete ```python / ```py / bare fenced block defining ``class ModelNew``."""
    for lang, body in reversed(fenced_blocks(reply)):
        if lang in _PYTHON_LANGS and _MODELNEW.search(body):
            return body.strip("\n") + "\n"
    return None


def extract_json(reply: str, schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON object in ``reply`` that matches ``schema``; ExtractionError says what was wrong.

    Tried in order: the whole reply, fenced json blocks (last first), then balanced ``{...}``
    objects in the text (last first). The first candidate that validates wins; if none does, the
    error describes the most likely one (the earliest tried).
    """
    candidates = _json_candidates(reply)
    if not candidates:
        keys = ", ".join(schema.get("required", []))
        raise ExtractionError(
            f"no JSON object found in the reply; answer with one JSON object with keys {keys}"
        )
    first_problem: str | None = None
    for value in candidates:
        problem = _validate(value, schema, "")
        if problem is None:
            return value
        first_problem = first_problem or problem
    raise ExtractionError(f"the JSON reply does not match the expected form: {first_problem}")


def _json_candidates(reply: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    whole = _loads(reply.strip())
    if whole is not None:
        found.append(whole)
    for lang, body in reversed(fenced_blocks(reply)):
        if lang in _JSON_LANGS or lang == "":
            value = _loads(body.strip())
            if value is not None:
                found.append(value)
    found.extend(reversed(_balanced_objects(reply)))
    return found


def _loads(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _balanced_objects(text: str) -> list[dict[str, Any]]:
    """Top-level JSON objects embedded in text, left to right."""
    decoder = json.JSONDecoder()
    objects: list[dict[str, Any]] = []
    i = text.find("{")
    while i != -1:
        try:
            value, end = decoder.raw_decode(text, i)
        except (json.JSONDecodeError, RecursionError):
            i = text.find("{", i + 1)
            continue
        if isinstance(value, dict):
            objects.append(value)
        i = text.find("{", end)
    return objects


_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def _type_ok(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind in ("number", "integer"):
        return False  # JSON true is not a number, though Python's bool is an int
    return isinstance(value, _TYPES.get(kind, (object,)))


def _json_type(value: Any) -> str:
    for kind in ("boolean", "null", "integer", "number", "string", "array", "object"):
        if _type_ok(value, kind):
            return kind
    return type(value).__name__


def _validate(value: Any, schema: dict[str, Any], path: str) -> str | None:
    """The first way ``value`` breaks ``schema`` (a small JSON Schema subset), or None."""
    where = path or "the reply"
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        if not any(_type_ok(value, k) for k in kinds):
            return f"{where} must be {' or '.join(kinds)}, got {_json_type(value)}"
    if "enum" in schema and value not in schema["enum"]:
        options = ", ".join(json.dumps(v) for v in schema["enum"])
        return f"{where} must be one of {options}, got {json.dumps(value)}"
    if isinstance(value, str) and len(value.strip()) < schema.get("minLength", 0):
        return f"{where} must not be empty"
    if isinstance(value, dict):
        missing = [k for k in schema.get("required", []) if k not in value]
        if missing:
            return f"{where} is missing required key(s): {', '.join(missing)}"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                problem = _validate(value[key], sub, f"{path}.{key}" if path else key)
                if problem:
                    return problem
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            return f"{where} needs at least {schema['minItems']} item(s)"
        if "items" in schema:
            for n, item in enumerate(value):
                problem = _validate(item, schema["items"], f"{path}[{n}]")
                if problem:
                    return problem
    return None
