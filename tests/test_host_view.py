"""What of the host a confined worker sees (sandbox/backends/host_view.py; threat row 28).

The list itself, checked without starting a worker; tests/test_escapes.py runs a candidate that
tries to list and read the checkout under each confined backend.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from paths import REPO

from kernelloop.sandbox.backends import bwrap, docker, host_view


def _view(**kw) -> list[host_view.Entry]:
    return host_view.worker_view([sys.executable], **kw)


def test_every_entry_says_why_and_none_is_the_whole_host():
    for entry in _view(gpu=True):
        assert entry.why, entry
        assert entry.path not in ("/", "/work", "/root", "/home", "/srv", "/opt", "/etc"), entry


def test_of_the_checkout_only_the_workers_code_folders_are_bound():
    inside = {Path(e.path) for e in _view() if Path(e.path).is_relative_to(REPO)}
    assert REPO not in inside, "the whole checkout is bound"
    code = {REPO / "kernelloop", REPO / "sandbox", REPO / "feedback"}
    venv = {Path(sys.prefix)} if Path(sys.prefix).is_relative_to(REPO) else set()
    assert inside <= code | venv, sorted(map(str, inside - code - venv))
    for private in ("runs", "tests", ".git", "benchmarks", "kernelbench", "agents", "docs"):
        assert REPO / private not in inside


def test_from_etc_only_the_loader_cache():
    etc = [e.path for e in _view(gpu=True) if e.path.startswith("/etc")]
    assert etc in ([], ["/etc/ld.so.cache"]), etc


def test_nothing_is_bound_twice_or_inside_a_bound_folder():
    view = _view(gpu=True)
    paths = [e.path for e in view]
    assert len(paths) == len(set(paths))
    folders = [e.path for e in view if e.link is None and not e.device]
    for p in paths:
        assert not any(p != f and p.startswith(f + "/") for f in folders), p


def test_gpu_adds_device_nodes_and_a_toolkit_outside_usr(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_HOME", str(tmp_path))
    cpu, gpu = _view(), _view(gpu=True)
    assert not any(e.device for e in cpu)
    assert all(e.path.startswith("/dev/nvidia") for e in gpu if e.device)
    assert str(tmp_path) in [e.path for e in gpu] and str(tmp_path) not in [e.path for e in cpu]


def test_a_program_run_by_absolute_path_brings_its_folder(tmp_path):
    profiler = tmp_path / "ncu"
    profiler.write_text("#!/bin/sh\n")
    profiler.chmod(0o755)
    view = host_view.worker_view([str(profiler), sys.executable, "-m", "x"])
    assert str(tmp_path) in [e.path for e in view]


def test_bwrap_starts_from_an_empty_read_only_root(tmp_path):
    argv = bwrap.wrap([sys.executable, "-c", "pass"], str(tmp_path), gpu=False).argv
    pairs = list(zip(argv, argv[1:], strict=False))
    assert ("--ro-bind", "/") not in pairs and ("--bind", "/") not in pairs
    assert ("--remount-ro", "/") in pairs
    assert ("--bind", str(tmp_path)) in pairs  # the work dir, the only writable bind


def test_docker_host_image_binds_the_same_view():
    binds = docker._host_mounts([sys.executable])
    assert all(mode == "ro" for _, mode in binds)
    paths = [p for p, _ in binds]
    assert str(REPO) not in paths
    expected = [e.path for e in _view() if e.link is None and not e.device]
    assert paths == expected
    assert not any(p.startswith("/etc/") and p != "/etc/ld.so.cache" for p in paths)
    assert os.path.realpath(sys.base_prefix) in paths or any(
        os.path.realpath(sys.base_prefix).startswith(p + "/") for p in paths
    )
