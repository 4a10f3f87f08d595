"""Cheating candidates against the evaluator, one per exploit of shared/docs/evaluator-threats.md.

Each case is (candidate file in tests/candidates/, problem, gate mode, expected reason codes):

- ``enforce``: the evaluator as it runs in a campaign. Where the static gate has something to say,
  the verdict must carry those codes and nothing of the candidate may have run.
- ``report``: the static gate only records its findings and the candidate runs anyway, as if the
  gate had been bypassed; the run-time layers (guards, NaN-poisoned allocations, trusted
  comparison, input hashes, repeat trial, hold-out sizes) must then name the cheat themselves.

Cheats the static gate cannot see (tensor arithmetic, caches, precision, shape hard-coding,
drift, ...) are only run with ``enforce``, where the run-time layers are what catches them. Every
verdict must be ``accepted is False``. Row 13 (degenerate problems) is checked by the problem
hygiene tests; rows 15, 16, 18, 20 and 22 are about timing and live in tests/gpu/.

The honest bundled solutions are evaluated the same way and must be accepted, so a verdict that
rejects everything cannot pass this file.
"""

from __future__ import annotations

import dataclasses

import pytest
from paths import CANDIDATES

from kernelloop.kernelbench.loader import load_one, solution_path
from kernelloop.sandbox import backends
from kernelloop.sandbox import reasons as R
from kernelloop.sandbox.evaluate import evaluate

# Codes only the static gate gives (INHERITS_REFERENCE is also a run-time check, in the worker).
GATE_ONLY = R.STATIC_CODES - {R.INHERITS_REFERENCE}
RELU = "level1/01_relu"
MATMUL = "level1/14_matmul_square"
CUMSUM = "level1/13_cumsum"


@dataclasses.dataclass(frozen=True)
class Cheat:
    file: str  # tests/candidates/<file>.py
    problem: str
    gate: str  # "enforce" | "report"
    expect: tuple[str, ...]  # every one of these codes must be in the verdict
    xfail: str | None = None  # a known evaluator hole (strict: the test fails once it is fixed)

    @property
    def id(self) -> str:
        return f"{self.file}-{self.gate}"


CHEATS = [
    # row 1: output-buffer reuse
    Cheat("r01_empty_output", RELU, "enforce", (R.WRONG_OUTPUT,)),
    Cheat("r01_partial_output", RELU, "enforce", (R.WRONG_OUTPUT,)),
    # row 2: input mutation
    Cheat("r02_inplace_relu", RELU, "enforce", (R.INPUT_MUTATED,)),
    Cheat("r02_result_into_input_view", RELU, "enforce", (R.INPUT_MUTATED,)),
    # row 3: side streams (static on CPU; the timing side is in tests/gpu/test_timing_gpu.py)
    Cheat("r03_side_stream", RELU, "enforce", (R.STREAMS,)),
    # row 4: thread injection
    Cheat("r04_thread_fill_later", RELU, "enforce", (R.THREADS, R.FORBIDDEN_IMPORT)),
    Cheat("r04_thread_fill_later", RELU, "report", (R.THREAD_LEAK, R.WRONG_OUTPUT)),
    Cheat("r04_thread_pool", RELU, "enforce", (R.THREADS,)),
    Cheat("r04_thread_pool", RELU, "report", (R.THREAD_LEAK,)),
    Cheat("r04_rewrite_output_file", RELU, "report", (R.CHANNEL_TAMPERED,)),
    Cheat("r04_garble_output_file", RELU, "report", (R.CHANNEL_TAMPERED,)),
    Cheat("r04_prestarted_thread_torch", RELU, "enforce", (R.THREADS, R.TORCH_COMPUTE)),
    # The op recorder cannot see another thread, but the thread itself is caught: it did not
    # exist before the candidate was loaded (found by this suite; the count used to be per call).
    Cheat("r04_prestarted_thread_torch", RELU, "report", (R.THREAD_LEAK,)),
    # row 5: lazy or fake tensors
    Cheat("r05_tensor_subclass_eq", RELU, "enforce", (R.TENSOR_SUBCLASS,)),
    Cheat("r05_tensor_subclass_eq", RELU, "report", (R.OUTPUT_NOT_TENSOR,)),
    Cheat("r05_fake_object_eq", RELU, "enforce", (R.INTROSPECTION,)),
    Cheat("r05_fake_object_eq", RELU, "report", (R.OUTPUT_NOT_TENSOR,)),
    # row 6: patching timers or sync
    Cheat("r06_patch_timers", RELU, "enforce", (R.TIMER_PATCH, R.FORBIDDEN_IMPORT)),
    Cheat("r06_patch_timers", RELU, "report", (R.FUNCTION_PATCHED,)),
    Cheat("r06_patch_event_in_forward", RELU, "enforce", (R.TIMER_PATCH, R.DYNAMIC_CODE)),
    Cheat("r06_patch_event_in_forward", RELU, "report", (R.FUNCTION_PATCHED,)),
    # row 7: result caching / replay
    Cheat("r07_cache_by_shape", RELU, "enforce", (R.WRONG_OUTPUT,)),
    Cheat("r07_cache_by_data_ptr", RELU, "enforce", (R.WRONG_OUTPUT,)),
    Cheat("r07_file_cache", RELU, "enforce", (R.FILE_ACCESS, R.FORBIDDEN_IMPORT)),
    Cheat("r07_file_cache", RELU, "report", (R.WRONG_OUTPUT,)),
    # row 8: precision downgrade (TF32 matmul: GPU only, see r08_matmul_tf32_default.py)
    Cheat("r08_fp16_in_kernel", RELU, "enforce", (R.WRONG_OUTPUT,)),
    Cheat("r08_bf16_host_cast", RELU, "enforce", (R.WRONG_OUTPUT,)),
    Cheat("r08_fp16_output_dtype", RELU, "enforce", (R.WRONG_DTYPE,)),
    Cheat("r08_matmul_bf16_dot", MATMUL, "enforce", (R.WRONG_OUTPUT,)),
    # row 9: no kernel at all
    Cheat("r09_torch_relu", RELU, "enforce", (R.NO_KERNEL, R.TORCH_COMPUTE)),
    Cheat("r09_torch_relu", RELU, "report", (R.TORCH_OP_CALLED, R.NO_KERNEL_LAUNCHED)),
    Cheat("r09_kernel_never_launched", RELU, "enforce", (R.KERNEL_NOT_LAUNCHED, R.TORCH_COMPUTE)),
    Cheat("r09_kernel_never_launched", RELU, "report", (R.NO_KERNEL_LAUNCHED, R.TORCH_OP_CALLED)),
    Cheat("r09_alias_torch_op", RELU, "enforce", (R.TORCH_COMPUTE,)),
    Cheat("r09_alias_torch_op", RELU, "report", (R.TORCH_OP_CALLED,)),
    Cheat("r09_getattr_torch_op", RELU, "enforce", (R.DYNAMIC_CODE,)),
    Cheat("r09_getattr_torch_op", RELU, "report", (R.TORCH_OP_CALLED,)),
    Cheat("r09_nn_module", RELU, "enforce", (R.TORCH_COMPUTE,)),
    Cheat("r09_nn_module", RELU, "report", (R.TORCH_OP_CALLED,)),
    Cheat("r09_tensor_arithmetic", RELU, "enforce", (R.TORCH_OP_CALLED,)),
    Cheat("r09_disable_op_recorder", RELU, "enforce", (R.TENSOR_SUBCLASS, R.TORCH_COMPUTE)),
    # Popping the dispatch mode does not hide the op from the profiler's view (found by this
    # suite; the dispatch mode alone used to be the only run-time record).
    Cheat("r09_disable_op_recorder", RELU, "report", (R.TORCH_OP_CALLED,)),
    # row 10: try/except fallback
    Cheat("r10_try_except_fallback", RELU, "enforce", (R.EXCEPTION_FALLBACK, R.TORCH_COMPUTE)),
    Cheat("r10_try_except_fallback", RELU, "report", (R.TORCH_OP_CALLED,)),
    Cheat("r10_suppress_fallback", RELU, "enforce", (R.EXCEPTION_FALLBACK,)),
    Cheat("r10_suppress_fallback", RELU, "report", (R.TORCH_OP_CALLED,)),
    # row 11: inheriting the reference
    Cheat("r11_inherit_model", RELU, "enforce", (R.INHERITS_REFERENCE,)),
    Cheat("r11_inherit_model", RELU, "report", (R.INHERITS_REFERENCE, R.TORCH_OP_CALLED)),
    Cheat("r11_inherit_alias", RELU, "enforce", (R.INHERITS_REFERENCE,)),
    Cheat("r11_inherit_alias", RELU, "report", (R.INHERITS_REFERENCE,)),
    # row 12: shape hard-coding (caught by the hold-out variant)
    Cheat("r12_hardcoded_shape", RELU, "enforce", (R.WRONG_SHAPE,)),
    Cheat("r12_hardcoded_row_stride", RELU, "enforce", (R.WRONG_OUTPUT,)),
    # row 14: reading the answer (reference outputs on disk: tests/test_escapes.py)
    Cheat("r14_stack_introspection", RELU, "enforce", (R.INTROSPECTION, R.FORBIDDEN_IMPORT)),
    Cheat("r14_stack_introspection", RELU, "report", (R.WRONG_OUTPUT,)),
    Cheat("r14_gc_scan", RELU, "enforce", (R.INTROSPECTION, R.FORBIDDEN_IMPORT)),
    Cheat("r14_gc_scan", RELU, "report", (R.WRONG_OUTPUT,)),
    Cheat("r14_read_problem_file", RELU, "enforce", (R.FILE_ACCESS, R.DYNAMIC_CODE)),
    # bwrap shows the worker only the code it imports (host_view.py): the problem file is not
    # there. The process backend shows the host: the file is read, the reference runs.
    Cheat("r14_read_problem_file", RELU, "report", (R.IMPORT_FAILED,))
    if backends.select("auto").NAME != "process"
    else Cheat("r14_read_problem_file", RELU, "report", (R.TORCH_OP_CALLED,)),
    # row 17: garbage reads
    Cheat("r17_noise_within_tolerance", RELU, "enforce", (R.NONDETERMINISTIC,)),
    Cheat("r17_uninitialised_accumulator", RELU, "enforce", (R.WRONG_OUTPUT,)),
    # row 19: drift (DRIFT itself needs the GPU timing loop; on CPU the repeat trial catches it)
    Cheat("r19_drift_after_four_calls", RELU, "enforce", (R.WRONG_OUTPUT, R.NONDETERMINISTIC)),
    # row 21: work moved out of the timed window
    Cheat("r21_precompute_in_init", RELU, "enforce", (R.WRONG_OUTPUT,)),
    # row 24: switching off the in-process guards (the tripwire on their code)
    Cheat("r24_patch_recorder", RELU, "enforce", (R.TIMER_PATCH, R.INTROSPECTION)),
    Cheat("r24_patch_recorder", RELU, "report", (R.GUARD_TAMPERED, R.TORCH_OP_CALLED)),
    Cheat("r24_unwrap_thread_counter", RELU, "enforce", (R.THREADS, R.INTROSPECTION)),
    Cheat("r24_unwrap_thread_counter", RELU, "report", (R.GUARD_TAMPERED,)),
    # row 23 at run time: the interpreter no longer copies numpy and its raw-memory helpers into
    # the candidate's module, so names the gate saw bound (then deleted) stay unbound
    Cheat("r23_interpreter_globals", RELU, "enforce", (R.RUNTIME_ERROR,)),
    Cheat("r23_capture_scope_eval", RELU, "enforce", (R.FORBIDDEN_MODULE, R.INTROSPECTION)),
    Cheat("r23_capture_scope_eval", RELU, "report", (R.IMPORT_FAILED,)),
    Cheat("r24_patch_tensor_method", RELU, "enforce", (R.DYNAMIC_CODE,)),
    Cheat("r24_patch_tensor_method", RELU, "report", (R.GUARD_TAMPERED,)),
    # row 25: work in a thread started and joined inside the call (found by an attacker: the
    # thread count used to be of threads alive after the call)
    Cheat("r25_joined_thread_matmul", MATMUL, "enforce", (R.THREADS, R.TORCH_COMPUTE)),
    Cheat("r25_joined_thread_matmul", MATMUL, "report", (R.THREAD_STARTED,)),
    Cheat("r25_raw_thread_relu", RELU, "enforce", (R.THREADS, R.FORBIDDEN_IMPORT)),
    Cheat("r25_raw_thread_relu", RELU, "report", (R.THREAD_STARTED,)),
    # row 26: host compute without aten ops, beside a launched kernel (store coverage)
    Cheat("r26_ctypes_host_relu", RELU, "enforce", (R.FORBIDDEN_IMPORT,)),
    Cheat("r26_ctypes_host_relu", RELU, "report", (R.NOT_WRITTEN_BY_KERNEL,)),
    # row 30: right only in the interpreter's fixed program order (and the shim put back)
    Cheat("r30_scan_carry_through_global", CUMSUM, "enforce", (R.PROGRAM_ORDER_DEPENDENT,)),
    Cheat("r30_restore_program_order", CUMSUM, "report", (R.FUNCTION_PATCHED,)),
    Cheat("r30_replay_reversed_run", CUMSUM, "enforce", (R.PROGRAM_ORDER_DEPENDENT,)),
    # row 31: only the autotuner's CPU pick is correct
    Cheat("r31_only_first_config_correct", RELU, "enforce", (R.AUTOTUNE_CONFIG_WRONG,)),
]


def _params() -> list:
    params = []
    for c in CHEATS:
        marks = [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []
        params.append(pytest.param(c, id=c.id, marks=marks))
    return params


@pytest.mark.parametrize("cheat", _params())
def test_cheat_is_rejected(cheat: Cheat):
    source = read_candidate(f"{cheat.file}.py")
    static_codes = {f["code"] for f in _static(source, cheat.problem)}
    verdict = evaluate(load_one(cheat.problem), source, gate=cheat.gate, sandbox="auto")
    codes = set(verdict.codes)
    assert verdict.accepted is False, f"{cheat.file} was accepted: {verdict.to_json()[:2000]}"
    missing = set(cheat.expect) - codes
    assert not missing, f"{cheat.file}: expected {sorted(missing)} in {sorted(codes)}"
    if cheat.gate == "enforce" and static_codes:
        # The gate stopped it: nothing of the candidate ran.
        assert codes == static_codes, f"{sorted(codes)} != static {sorted(static_codes)}"
        assert verdict.correctness is None and not verdict.worker
    elif cheat.gate == "enforce":
        # Invisible to the gate: the run-time layers caught it, after a real run.
        assert not (codes & GATE_ONLY), sorted(codes)
        assert verdict.correctness is not None and verdict.correctness.trials
    else:
        # Report mode: the gate's findings are recorded, the candidate still ran, and the
        # rejection comes from run-time codes only.
        assert {f["code"] for f in verdict.static} == static_codes
        assert verdict.correctness is not None
        assert not (codes & GATE_ONLY), sorted(codes)


def read_candidate(name: str) -> str:
    return (CANDIDATES / name).read_text()


def _static(source: str, problem_id: str) -> list[dict]:
    from kernelloop.sandbox import static_gate

    problem = load_one(problem_id)
    return static_gate.check_source(source, allow_torch=problem.allow_torch).to_dict()["findings"]


def test_every_candidate_file_is_used():
    """A cheat file nobody evaluates is a row that silently lost its test."""
    used = {c.file for c in CHEATS} | {"r08_matmul_tf32_default", "r03_side_stream"}
    files = {p.stem for p in CANDIDATES.glob("r*.py")}
    assert files <= used, f"unused candidates: {sorted(files - used)}"
    for path in CANDIDATES.glob("*.py"):
        first = path.read_text().lstrip().splitlines()[0]
        assert first.startswith('"""'), f"{path.name} has no module docstring"


# Honest, bundled known-good solutions: the same evaluator must accept them.
HONEST = [
    "level1/01_relu",
    "level1/02_gelu",
    "level1/05_softmax",
    "level1/06_log_softmax",
    "level1/07_layernorm",
    "level1/08_rmsnorm",
    "level1/09_sum_dim",
    "level1/12_argmax_dim",
    "level1/13_cumsum",
    "level1/14_matmul_square",
    "level2/01_linear_bias_gelu",
    "level2/06_residual_add_layernorm",
]


@pytest.mark.parametrize("problem_id", HONEST)
def test_honest_solution_is_accepted(problem_id: str):
    problem = load_one(problem_id)
    path = solution_path(problem)
    assert path is not None, f"{problem_id} has no bundled solution"
    verdict = evaluate(problem, path.read_text(), gate="enforce", sandbox="auto")
    assert verdict.accepted, f"{problem_id}: {verdict.codes} {[r.message for r in verdict.reasons]}"
    assert verdict.static == []
    trials = verdict.correctness.trials
    assert trials and all(t.passed for t in trials)
    assert any(t.name.startswith("holdout") for t in trials), "no hold-out trial ran"
    assert any(t.name.endswith(".repeat") for t in trials), "no determinism repeat ran"
    assert verdict.correctness.checks.get("deterministic") is True
    assert verdict.correctness.checks.get("inputs_untouched") is True
    # where the seconds went, step by step (reference in this process on CPU, worker, compare)
    steps = verdict.phase_detail
    for step in ("reference.forward", "candidate.load", "candidate.forward", "compare.values"):
        assert steps.get(step, -1) >= 0, f"{problem_id}: no {step} in {steps}"
