"""Registers, spills and shared memory from ptxas, the driver and Triton, checked on CPU.

NVRTC and Triton's bundled ptxas are compilers, so a CPU machine compiles for sm_90 and reads real
ptxas figures. The driver path (NVRTC 13.0 prints no ptxas lines) is exercised with the thin
adapters patched; the last test runs it for real where a GPU is present.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
import triton
import triton.language as tl
from paths import REPO

from kernelloop.feedback import candidate_resources as cr
from kernelloop.feedback import static_resources as sr
from kernelloop.sandbox import nvrtc

# Recorded from NVRTC 13.5 (cuda-bindings 13.5) on this repository's CPU machine: compile_cuda(SRC,
# name, arch="sm_90") of the two kernels below, in one program (ptxas reports every entry).
RECORDED_NVRTC_13_5 = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'spills' for 'sm_90'
ptxas info    : Function properties for spills
ptxas         .     408 bytes stack frame, 772 bytes spill stores, 776 bytes spill loads
ptxas info    : Used 32 registers, used 0 barriers, 408 bytes cumulative stack size
ptxas info    : Compile time = 26.076 ms
ptxas info    : Compiling entry function 'many_regs' for 'sm_90'
ptxas info    : Function properties for many_regs
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 128 registers, used 0 barriers
ptxas info    : Compile time = 18.004 ms"""

# Recorded from the same NVRTC for a kernel with a 4 KiB __shared__ tile.
RECORDED_SMEM_13_5 = """\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function 'smem' for 'sm_90'
ptxas info    : Function properties for smem
ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 14 registers, used 1 barriers, 4096 bytes smem
ptxas info    : Compile time = 4.980 ms"""

# Recorded from Triton 3.9's bundled ptxas-blackwell (its log, shown by TRITON_DUMP_PTXAS_LOG):
# a different prefix and no "ptxas ." on the stack-frame line.
RECORDED_TRITON_3_9 = """\
ptxas-blackwell info    : 0 bytes gmem
ptxas-blackwell info    : Compiling entry function 'mm' for 'sm_90a'
ptxas-blackwell info    : Function properties for mm
    1480 bytes stack frame, 2864 bytes spill stores, 2344 bytes spill loads
ptxas-blackwell info    : Used 255 registers, used 1 barriers, 1480 bytes cumulative stack size
ptxas-blackwell info    : Compile time = 781.954 ms"""

# Written in the layout CUDA 11/12 ptxas prints (constant banks listed, no barrier count), with a
# non-inlined device function whose own "Function properties" block must not leak into the entry.
OLDER_LAYOUT = """\
ptxas info    : 0 bytes gmem
ptxas info    : Function properties for _Z6helperPf
    16 bytes stack frame, 8 bytes spill stores, 8 bytes spill loads
ptxas info    : Compiling entry function '_Z4tilePKfPf' for 'sm_80'
ptxas info    : Function properties for _Z4tilePKfPf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 40 registers, 8192 bytes smem, 368 bytes cmem[0]"""

KERNELS = r"""
#define N 96
__device__ __forceinline__ void body(const float* __restrict__ x, float* __restrict__ y, int n) {
    float acc[N];
    #pragma unroll
    for (int j = 0; j < N; ++j) acc[j] = x[j * 33 + threadIdx.x];
    for (int i = 0; i < n; ++i) {
        #pragma unroll
        for (int j = 0; j < N; ++j) acc[j] = fmaf(acc[j], acc[(j + 1) % N], x[i * N + j]);
    }
    float s = 0.f;
    #pragma unroll
    for (int j = 0; j < N; ++j) s += acc[j] * (j + 1);
    y[threadIdx.x] = s;
}
// 96 accumulators live across a loop: about 128 registers per thread.
extern "C" __global__ void many_regs(const float* __restrict__ x, float* __restrict__ y, int n) {
    body(x, y, n);
}
// The same body capped at 32 registers (2 blocks of 1024 threads per SM): ptxas must spill.
extern "C" __global__ void __launch_bounds__(1024, 2)
spills(const float* __restrict__ x, float* __restrict__ y, int n) {
    body(x, y, n);
}
// A dynamically indexed local array lives in local memory: stack, not spills.
extern "C" __global__ void stack_array(const float* x, float* y, int n, int k) {
    float buf[256];
    for (int i = 0; i < 256; ++i) buf[i] = x[(threadIdx.x + i) % n];
    y[threadIdx.x] = buf[k & 255] + buf[(k * 7) & 255];
}
"""


def test_recorded_nvrtc_log_is_parsed_per_entry_function():
    found = sr.parse_ptxas_log(RECORDED_NVRTC_13_5)
    assert set(found) == {"spills", "many_regs"}
    s = found["spills"]
    assert (s.registers, s.stack_bytes, s.spill_stores_bytes, s.spill_loads_bytes) == (
        32,
        408,
        772,
        776,
    )
    assert s.arch == "sm_90" and s.barriers == 0 and s.shared_bytes == 0
    m = found["many_regs"]
    assert (m.registers, m.spill_stores_bytes, m.spill_loads_bytes) == (128, 0, 0)
    assert sr.parse_ptxas_log(RECORDED_SMEM_13_5)["smem"].shared_bytes == 4096


def test_recorded_triton_log_and_the_older_layout_are_parsed():
    mm = sr.parse_ptxas_log(RECORDED_TRITON_3_9)["mm"]
    assert (mm.registers, mm.spill_stores_bytes, mm.arch) == (255, 2864, "sm_90a")
    old = sr.parse_ptxas_log(OLDER_LAYOUT)
    assert list(old) == ["_Z4tilePKfPf"]  # the device function is not an entry
    tile = old["_Z4tilePKfPf"]
    assert (tile.registers, tile.shared_bytes, tile.spill_stores_bytes) == (40, 8192, 0)
    assert sr.parse_ptxas_log("") == {} and sr.parse_ptxas_log("error: nope") == {}


def test_real_nvrtc_reports_high_register_use():
    res = sr.from_cuda_source(KERNELS, "many_regs", arch="sm_90")
    assert res.source == "ptxas-log" and res.arch == "sm_90" and res.backend == "cuda"
    assert res.registers_per_thread >= 96  # 96 live accumulators
    assert res.spills is False and res.local_bytes == 0
    assert "NVRTC" in res.notes[0]


def test_real_nvrtc_reports_spills_under_a_register_cap():
    res = sr.from_cuda_source(KERNELS, "spills", arch="sm_90")
    assert res.registers_per_thread <= 32  # 65536 registers / (2 x 1024 threads)
    assert res.spills and res.spill_stores_bytes > 0 and res.spill_loads_bytes > 0
    assert res.local_bytes > 0


def test_a_local_array_is_stack_not_spill():
    res = sr.from_cuda_source(KERNELS, "stack_array", arch="sm_90")
    assert res.local_bytes >= 256 * 4 and res.spills is False


def test_mangled_and_templated_names_are_matched_through_the_lowered_name():
    src = "template <int K> __global__ void scale(float* y) { y[threadIdx.x] *= K; }"
    res = sr.from_cuda_source(src, "scale<3>", arch="sm_90")
    assert res.source == "ptxas-log" and res.registers_per_thread > 0


def _silent_nvrtc(monkeypatch):
    """Make compile_cuda behave like NVRTC 13.0: a CUBIN but no ptxas lines in the log."""
    real = nvrtc.compile_cuda
    monkeypatch.setattr(
        nvrtc,
        "compile_cuda",
        lambda *a, **k: dataclasses.replace(real(*a, **k), log=""),
    )


def test_silent_nvrtc_with_a_gpu_asks_the_driver(monkeypatch):
    _silent_nvrtc(monkeypatch)
    monkeypatch.setattr(sr, "_visible_gpu_arch", lambda: "sm_90")
    seen = []

    def fake_attributes(kernel):
        seen.append(kernel.compiled.lowered_name)
        return {
            "registers": 40,
            "local_bytes": 16,
            "static_shared_bytes": 4096,
            "max_threads_per_block": 1024,
        }

    monkeypatch.setattr(sr, "_driver_attributes", fake_attributes)
    res = sr.from_cuda_source(KERNELS, "many_regs", arch="sm_90")
    assert seen == ["many_regs"]
    assert res.source == "driver-attributes"
    assert (res.registers_per_thread, res.local_bytes, res.shared_bytes) == (40, 16, 4096)
    assert res.max_threads_per_block == 1024
    assert res.spill_stores_bytes is None and res.spills is None  # the driver cannot say
    assert "not spill bytes" in res.notes[0]


def test_silent_nvrtc_without_a_gpu_says_what_is_missing(monkeypatch):
    _silent_nvrtc(monkeypatch)
    monkeypatch.setattr(sr, "_visible_gpu_arch", lambda: None)
    res = sr.from_cuda_source(KERNELS, "many_regs", arch="sm_90")
    assert res.source == "none" and res.registers_per_thread is None
    assert "no ptxas resource lines" in res.notes[0] and "no GPU here" in res.notes[0]


def test_silent_nvrtc_with_another_gpu_does_not_ask_it(monkeypatch):
    _silent_nvrtc(monkeypatch)
    monkeypatch.setattr(sr, "_visible_gpu_arch", lambda: "sm_80")
    monkeypatch.setattr(sr, "_driver_attributes", lambda k: pytest.fail("asked the wrong GPU"))
    res = sr.from_cuda_source(KERNELS, "many_regs", arch="sm_90")
    assert res.source == "none" and "sm_80" in res.notes[0]


def test_ptx_only_targets_are_reported_as_such():
    res = sr.from_cuda_source(KERNELS, "many_regs", arch="compute_90")
    assert res.source == "none" and "PTX only" in res.notes[0]


def test_compile_errors_propagate_from_from_cuda_source():
    with pytest.raises(nvrtc.CudaCompileError):
        sr.from_cuda_source('extern "C" __global__ void k(float* y) { y[0] = undefined; }', "k")


def test_round_trip_through_json():
    res = sr.from_cuda_source(KERNELS, "spills", arch="sm_90")
    again = sr.StaticResources.from_dict(json.loads(json.dumps(res.to_dict())))
    assert again == res


# --- Triton --------------------------------------------------------------------------------------


@triton.jit
def _add_kernel(x_ptr, y_ptr, out_ptr, n, BLOCK: tl.constexpr = 1024):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask)
    y = tl.load(y_ptr + offs, mask=mask)
    tl.store(out_ptr + offs, x + y, mask=mask)


def test_triton_kernel_compiles_for_sm90_without_a_gpu():
    if sr._interpreting():  # conftest sets TRITON_INTERPRET=1 on CPU for the module tests
        pytest.skip("triton is interpreted in this process; the fresh-process test compiles")
    sig = {"x_ptr": torch.float32, "y_ptr": "*fp32", "out_ptr": "*fp32", "n": "i32"}
    res = sr.from_triton(_add_kernel, sig, arch=90)
    assert res.backend == "triton" and res.kernel == "_add_kernel" and res.arch == "sm_90a"
    assert res.source == "ptxas-log", res.notes
    assert 0 < res.registers_per_thread <= 64 and res.spills is False
    assert res.shared_bytes == 0  # no reductions or dots: no shared memory
    assert any("4 warps" in n for n in res.notes)
    bigger = sr.from_triton(_add_kernel, sig, {"BLOCK": 4096}, num_warps=1)
    assert bigger.registers_per_thread > res.registers_per_thread  # 128 elements per thread


def test_triton_needs_every_argument_type():
    with pytest.raises(TypeError, match="n"):
        sr.from_triton(_add_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "out_ptr": "*fp32"})


def test_candidate_cuda_file_is_read_not_imported():
    source = (REPO / "examples" / "relu_cuda.py").read_text()
    (res,) = cr.from_candidate_source(source)
    assert res.kernel == "relu_f32" and res.backend == "cuda" and res.source == "ptxas-log"
    assert res.registers_per_thread > 0 and res.spills is False


def test_candidate_cuda_kernels_that_fail_or_are_not_literals_become_notes():
    source = textwrap.dedent(
        """
        from kernelloop.sandbox.nvrtc import load_kernel
        BAD = 'extern "C" __global__ void bad(float* y) { y[0] = nope; }'
        a = load_kernel(BAD, "bad")
        b = load_kernel(make_source(), "dynamic")
        """
    )
    bad, dynamic = cr.from_candidate_source(source, "cuda")
    assert bad.kernel == "bad" and bad.source == "none" and "nope" in bad.notes[0]
    assert dynamic.kernel == "dynamic" and "not a literal" in dynamic.notes[0]


SOFTMAX = (REPO / "kernelbench/problems/level1/solutions/05_softmax.py").read_text()


def test_candidate_triton_kernels_need_argument_types():
    (res,) = cr.from_candidate_source(SOFTMAX)
    assert res.kernel == "_softmax_kernel" and res.backend == "triton"
    assert res.registers_per_thread is None and res.notes == [cr.NEEDS_LAUNCH]


def test_candidate_triton_kernels_are_declared_without_running_the_file(tmp_path):
    marker = tmp_path / "ran"
    source = textwrap.dedent(
        f"""
        import pathlib
        import triton
        import triton.language as tl

        def touch():
            pathlib.Path({str(marker)!r}).write_text("ran")
            return 1

        touch()

        @triton.autotune(configs=[touch()], key=[])
        @triton.jit
        def k(x_ptr, n: touch(), scale=touch(), BLOCK: tl.constexpr = 256):
            offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
            tl.store(x_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 2, mask=offs < n)
        """
    )
    (res,) = cr.from_candidate_source(
        source, "triton", signatures={"k": {"x_ptr": "*fp16", "n": "i32", "scale": "fp32"}}
    )
    assert not marker.exists()  # the point of this test: nothing of the file ran
    assert res.kernel == "k"
    if not sr._interpreting():  # compiling for a GPU needs a non-interpreted triton
        assert res.source == "ptxas-log" and res.registers_per_thread > 0


def test_candidate_triton_reductions_compile_where_triton_is_not_interpreted():
    # tl.max / tl.sum are Triton library kernels; a process that imported triton under
    # TRITON_INTERPRET=1 (these tests, on CPU) holds interpreter versions of them, so compile in a
    # fresh process, as the profile step would.
    code = textwrap.dedent(
        """
        import json, sys
        from kernelloop.feedback.candidate_resources import from_candidate_source
        sig = {"x_ptr": "*fp16", "y_ptr": "*fp16", "n_cols": "i32", "stride_x": "i32",
               "stride_y": "i32", "BLOCK": 4096, "SINGLE": True, "num_warps": 8}
        (res,) = from_candidate_source(sys.stdin.read(), signatures={"_softmax_kernel": sig})
        print(json.dumps(res.to_dict()))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    out = subprocess.run(
        [sys.executable, "-c", code], input=SOFTMAX, env=env,
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    res = sr.StaticResources.from_dict(json.loads(out.stdout.strip().splitlines()[-1]))
    assert res.source == "ptxas-log", res.notes
    assert res.registers_per_thread > 0 and res.shared_bytes > 0  # the row reductions
    assert any("8 warps" in n for n in res.notes)


def test_interpreted_triton_says_why_it_cannot_compile(monkeypatch):
    if not sr._interpreting():
        pytest.skip("triton was imported without TRITON_INTERPRET here")
    sig = {
        "x_ptr": "*fp16",
        "y_ptr": "*fp16",
        "n_cols": "i32",
        "stride_x": "i32",
        "stride_y": "i32",
    }
    sig |= {"BLOCK": 1024, "SINGLE": True}
    (res,) = cr.from_candidate_source(SOFTMAX, signatures={"_softmax_kernel": sig})
    assert res.registers_per_thread is None and "TRITON_INTERPRET=1" in res.notes[0]


@pytest.mark.skipif(sr._visible_gpu_arch() is None, reason="needs a CUDA GPU")
def test_on_a_gpu_the_driver_agrees_with_ptxas():
    arch = sr._visible_gpu_arch()
    res = sr.from_cuda_source(KERNELS, "many_regs", arch=arch)
    kernel = nvrtc.load_kernel(KERNELS, "many_regs", arch=arch)
    attrs = kernel.attributes()
    assert res.registers_per_thread == attrs["registers"]
