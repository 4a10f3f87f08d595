"""Prompt templates render completely; code and JSON come out of untidy replies."""

from __future__ import annotations

import ast
import re

import pytest

from kernelloop.agents import prompts
from kernelloop.agents.extract import (
    OPTIMIZE_SCHEMA,
    REPAIR_SCHEMA,
    ExtractionError,
    extract_code,
    extract_json,
)
from kernelloop.feedback.gpu_specs import lookup
from kernelloop.feedback.untrusted import truncate

ROLES = ["coder-initial", "coder-repair", "coder-optimize", "judge-repair", "judge-optimize"]


def test_every_template_is_there():
    assert set(ROLES) | {"backend-triton", "backend-cuda"} <= set(prompts.names())


@pytest.mark.parametrize("name", prompts.names())
def test_every_template_renders_without_leftover_placeholders(name):
    values = {key: f"<{key}>" for key in prompts.placeholders(name)}
    text = prompts.render(name, **values)
    assert "$" not in text
    for key in values:
        assert f"<{key}>" in text


@pytest.mark.parametrize("name", ROLES)
def test_role_templates_take_their_inputs(name):
    needed = prompts.placeholders(name)
    assert "problem_source" in needed
    if name.startswith("coder"):
        assert "backend_rules" in needed
    expected = {
        "coder-initial": {"gpu"},
        "coder-repair": {"source", "error", "diagnosis"},
        "coder-optimize": {"gpu", "source", "timing", "advice", "history"},
        "judge-repair": {"source", "error"},
        "judge-optimize": {"source", "timing", "profile", "gpu", "history"},
    }[name]
    assert expected <= needed


def test_missing_value_names_the_placeholder():
    with pytest.raises(KeyError, match=r"\$diagnosis"):
        prompts.render(
            "coder-repair",
            problem_source="p",
            backend_rules="r",
            source="s",
            error="e",
        )


def test_values_are_inserted_verbatim():
    source = "price = '$5'  # ${not_a_placeholder}"
    values = {k: "x" for k in prompts.placeholders("judge-repair")}
    text = prompts.render("judge-repair", **{**values, "source": source})
    assert source in text


@pytest.mark.parametrize("backend", ["triton", "cuda"])
def test_backend_example_is_a_valid_candidate(backend):
    from kernelloop.sandbox.static_gate import check_source

    rules = prompts.backend_rules(backend)
    code = extract_code(rules)
    assert code is not None
    ast.parse(code)
    assert not check_source(code, backend=backend).findings


def test_backend_rules_match_the_solution_rules():
    triton = prompts.backend_rules("triton")
    for rule in [
        "`torch`, `torch.nn`, `triton`, `triton.language` and `math`",
        "same names and shapes",
        "`try`/`except`",
        'input_precision="ieee"',
        "Do not subclass `Model`",
        "mask the tails",
    ]:
        assert rule in triton
    assert "load_kernel" in prompts.backend_rules("cuda")
    with pytest.raises(ValueError, match="triton or cuda"):
        prompts.backend_rules("cuda-inline")


def test_gpu_brief():
    text = prompts.gpu_brief(lookup("NVIDIA H100 80GB HBM3"))
    for part in ["H100 SXM", "132 SMs", "3350 GB/s", "50 MiB", "228 KiB", "fp32 67", "tf32 494.5"]:
        assert part in text
    assert "bf16 989.5" in text and "fp16 989.5" in text
    assert len(text.splitlines()) <= 5
    assert prompts.gpu_brief(None) == (
        "no GPU here: correctness under the Triton interpreter, no timing"
    )


@pytest.mark.parametrize("size, limit", [(10_000, 1000), (5000, 100), (200, 40), (101, 100)])
def test_truncate_keeps_head_and_tail(size, limit):
    text = "".join(chr(ord("a") + i % 26) for i in range(size))
    cut = truncate(text, limit)
    assert len(cut) <= limit
    head, _, tail = re.split(r"(\n\[\.\.\. \d+ characters cut \.\.\.\]\n)", cut)
    assert text.startswith(head) and text.endswith(tail)
    assert head and tail
    omitted = int(re.search(r"(\d+) characters cut", cut).group(1))
    assert len(head) + len(tail) + omitted == size


def test_truncate_short_text_and_tiny_limits():
    assert truncate("short", 100) == "short"
    assert truncate("x" * 50, 5) == "xxxxx"
    with pytest.raises(ValueError):
        truncate("x", -1)


# --- extract_code -------------------------------------------------------------------------------
DRAFT = "class ModelNew:\n    draft = 1\n"
FINAL = "import torch\n\nclass ModelNew(torch.nn.Module):\n    final = 2\n"


def test_extract_code_takes_the_last_complete_modelnew_block():
    reply = (
        f"Plan first.\n```python\n{DRAFT}```\nBetter:\n```py\n{FINAL}```\n"
        "Usage:\n```python\nm = ModelNew()\n```\n"
    )
    assert extract_code(reply) == FINAL


def test_extract_code_ignores_an_unterminated_block():
    reply = f"```python\n{FINAL}```\nSecond try:\n```python\n{DRAFT}"
    assert extract_code(reply) == FINAL


def test_extract_code_bare_fence_and_other_languages():
    assert extract_code(f"```\n{FINAL}```") == FINAL
    assert extract_code(f"```cuda\n{FINAL}```") is None
    assert extract_code("no code at all") is None
    assert extract_code(f"```python\n{FINAL}") is None
    assert extract_code("```python\nclass Model(nn.Module):\n    pass\n```") is None


def test_extract_code_long_fence_holds_a_shorter_one():
    body = 'class ModelNew:\n    doc = """\n```\nnot a fence end\n```\n"""\n'
    assert extract_code(f"````python\n{body}````\n") == body


# --- extract_json -------------------------------------------------------------------------------
REPAIR = '{"error_type": "compile", "root_cause": "missing mask", "fix": "mask the tail"}'


@pytest.mark.parametrize(
    "reply",
    [
        REPAIR,
        f"  {REPAIR}\n",
        f"Here you go:\n```json\n{REPAIR}\n```\nHope it helps.",
        f"```\n{REPAIR}\n```",
        f"I think {{this}} matters. Answer: {REPAIR} -- done",
        f'Draft: {{"error_type": "x"}}\nFinal: {REPAIR}',
    ],
)
def test_extract_json_variants(reply):
    assert extract_json(reply, REPAIR_SCHEMA)["fix"] == "mask the tail"


def test_extract_json_prefers_a_valid_candidate_over_a_later_invalid_one():
    reply = f'```json\n{REPAIR}\n```\nwhere {{"fix": 1}} is wrong'
    assert extract_json(reply, REPAIR_SCHEMA)["error_type"] == "compile"


def test_extract_json_optimize_schema():
    reply = """```json
{"bottleneck": "DRAM bandwidth", "evidence": [{"metric": "dram_throughput", "value": 91.5,
 "unit": "%"}, {"metric": "achieved", "value": "3.05", "unit": "TB/s"}],
 "change": "fuse the two passes", "expected_effect": "about 2x fewer bytes"}
```"""
    advice = extract_json(reply, OPTIMIZE_SCHEMA)
    assert advice["evidence"][0]["value"] == 91.5


@pytest.mark.parametrize(
    "reply, schema, message",
    [
        ("no json here", REPAIR_SCHEMA, "no JSON object found.*error_type, root_cause, fix"),
        ('{"error_type": "compile", "fix": "x"}', REPAIR_SCHEMA, "missing required.*root_cause"),
        ('{"error_type": 3, "root_cause": "a", "fix": "b"}', REPAIR_SCHEMA, "error_type must be"),
        ('{"error_type": "a", "root_cause": " ", "fix": "b"}', REPAIR_SCHEMA, "root_cause.*empty"),
        ("[1, 2]", REPAIR_SCHEMA, "no JSON object"),
        (
            '{"bottleneck": "b", "evidence": "lots", "change": "c", "expected_effect": "e"}',
            OPTIMIZE_SCHEMA,
            "evidence must be array, got string",
        ),
        (
            '{"bottleneck": "b", "evidence": [{"metric": "m", "value": true, "unit": "%"}],'
            ' "change": "c", "expected_effect": "e"}',
            OPTIMIZE_SCHEMA,
            r"evidence\[0\]\.value must be number or string, got boolean",
        ),
        (
            '{"bottleneck": "b", "evidence": [{"metric": "m", "value": 1}],'
            ' "change": "c", "expected_effect": "e"}',
            OPTIMIZE_SCHEMA,
            r"evidence\[0\] is missing required key\(s\): unit",
        ),
    ],
)
def test_extract_json_errors_say_what_was_wrong(reply, schema, message):
    with pytest.raises(ExtractionError, match=message):
        extract_json(reply, schema)


def test_extract_json_enum_and_min_items():
    schema = {
        "type": "object",
        "properties": {
            "kind": {"enum": ["a", "b"]},
            "xs": {"type": "array", "minItems": 1, "items": {"type": "integer"}},
        },
        "required": ["kind", "xs"],
    }
    assert extract_json('{"kind": "a", "xs": [1]}', schema) == {"kind": "a", "xs": [1]}
    with pytest.raises(ExtractionError, match='kind must be one of "a", "b"'):
        extract_json('{"kind": "c", "xs": [1]}', schema)
    with pytest.raises(ExtractionError, match="xs needs at least 1"):
        extract_json('{"kind": "a", "xs": []}', schema)
    with pytest.raises(ExtractionError, match=r"xs\[0\] must be integer, got number"):
        extract_json('{"kind": "a", "xs": [1.5]}', schema)
