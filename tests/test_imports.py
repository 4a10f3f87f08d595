"""The core imports without an LLM SDK, LangGraph, a GPU or a network; the CLI is cheap."""

from __future__ import annotations

import subprocess
import sys

CORE = [
    "kernelloop.kernelbench.loader",
    "kernelloop.kernelbench.hygiene",
    "kernelloop.sandbox.evaluate",
    "kernelloop.sandbox.static_gate",
    "kernelloop.feedback.roofline",
    "kernelloop.library",
    "kernelloop.modules",
    "kernelloop.runs.store",
]


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return set(out.stdout.split())


def test_core_does_not_import_llm_sdks():
    loaded = _loaded_after("; ".join(f"import {m}" for m in CORE))
    for sdk in ("openai", "langgraph", "langchain_core", "fastapi", "ray", "docker"):
        assert sdk not in loaded, f"{sdk} imported by the core"


def test_import_kernelloop_and_the_cli_are_cheap():
    loaded = _loaded_after("import kernelloop, kernelloop.cli")
    assert "torch" not in loaded and "triton" not in loaded and "openai" not in loaded


def test_kernelloop_patch_is_imported_on_first_use_only():
    # The root package hands out patch/unpatch through a module __getattr__: importing it (and
    # the CLI, which registers `kernelloop apply`) must not import model_patch, torch or triton.
    assert _loaded_after("import kernelloop") - _loaded_after("pass") == {"kernelloop"}
    before = _loaded_after("import kernelloop, kernelloop.cli")
    assert "kernelloop.model_patch" not in before and "kernelloop.library.loaded" not in before
    after = _loaded_after(
        "import kernelloop; kernelloop.patch, kernelloop.unpatch; "
        "from kernelloop import PatchReport"
    )
    assert {"kernelloop.model_patch", "torch"} <= after


def test_every_code_folder_is_a_listed_package():
    # setuptools' explicit package list is what a wheel (non-editable) install ships: a subfolder
    # missing from it imports in the checkout and fails after `pip install .`.
    import tomllib

    from paths import REPO

    root = REPO
    conf = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(conf["packages"])
    found = set()
    for name, folder in conf["package-dir"].items():
        for init in (root / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(root / folder).parts
            found.add(".".join((name, *rel)))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
