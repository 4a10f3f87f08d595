"""Reason codes a verdict can carry, one per way a candidate can fail or cheat.

Codes are stable strings (they are stored in run databases and matched by tests); the comment on
each says which row of ``shared/docs/evaluator-threats.md`` it answers, where one applies.
"""

from __future__ import annotations

# --- static gate (source inspected as text/AST; nothing executed) ------------------------------
SYNTAX_ERROR = "SYNTAX_ERROR"
NO_MODELNEW = "NO_MODELNEW"
NO_KERNEL = "NO_KERNEL"  # row 9: no @triton.jit / __global__ / load_inline at all
KERNEL_NOT_LAUNCHED = "KERNEL_NOT_LAUNCHED"  # row 9: kernel defined, never launched
TORCH_COMPUTE = "TORCH_COMPUTE"  # row 9: torch/cuBLAS compute not allowed by ALLOW_TORCH
EXCEPTION_FALLBACK = "EXCEPTION_FALLBACK"  # row 10: try/except around kernel calls
INHERITS_REFERENCE = "INHERITS_REFERENCE"  # row 11: class ModelNew(Model)
THREADS = "THREADS"  # row 4: threading / multiprocessing / concurrent.futures / asyncio
STREAMS = "STREAMS"  # row 3: side streams
TIMER_PATCH = "TIMER_PATCH"  # row 6: reassigning timers or synchronisation
TENSOR_SUBCLASS = "TENSOR_SUBCLASS"  # row 5: torch.Tensor subclasses, __torch_function__
FORBIDDEN_IMPORT = "FORBIDDEN_IMPORT"  # row 14: os, sys, ctypes, importlib, socket, ...
DYNAMIC_CODE = "DYNAMIC_CODE"  # row 14: exec, eval, compile, __import__, getattr tricks
FILE_ACCESS = "FILE_ACCESS"  # rows 7, 14: open(), torch.load/save, reading the reference
INTROSPECTION = "INTROSPECTION"  # row 14: frames, __globals__, __subclasses__, gc
FORBIDDEN_MODULE = "FORBIDDEN_MODULE"  # row 23: a module outside the allowlist, however reached
HOST_READS_VALUES = "HOST_READS_VALUES"  # row 26: .item(), .tolist(), numpy, raw memory on host

# --- build --------------------------------------------------------------------------------------
BUILD_FAILED = "BUILD_FAILED"  # compile error (NVRTC, load_inline, Triton), with line numbers
IMPORT_FAILED = "IMPORT_FAILED"  # the candidate module raised while being loaded
INIT_FAILED = "INIT_FAILED"  # ModelNew(*init_inputs) raised

# --- correctness (compared in trusted code) -----------------------------------------------------
RUNTIME_ERROR = "RUNTIME_ERROR"  # forward raised (CUDA errors included, row 17)
WRONG_OUTPUT = "WRONG_OUTPUT"  # values outside the dtype-aware tolerance (rows 1, 8, 12, 21)
WRONG_SHAPE = "WRONG_SHAPE"  # row 12
WRONG_DTYPE = "WRONG_DTYPE"  # row 8
WRONG_DEVICE = "WRONG_DEVICE"
OUTPUT_NOT_TENSOR = "OUTPUT_NOT_TENSOR"  # row 5: not exactly torch.Tensor
INPUT_MUTATED = "INPUT_MUTATED"  # row 2
NONDETERMINISTIC = "NONDETERMINISTIC"  # row 17: two runs on the same inputs disagree
THREAD_LEAK = "THREAD_LEAK"  # row 4: a call left threads running
TORCH_OP_CALLED = "TORCH_OP_CALLED"  # row 9, at run time: an aten compute op was dispatched
NO_KERNEL_LAUNCHED = "NO_KERNEL_LAUNCHED"  # row 9, at run time: forward launched no kernel
FUNCTION_PATCHED = "FUNCTION_PATCHED"  # row 6, at run time: timer/sync identity changed
GUARD_TAMPERED = "GUARD_TAMPERED"  # row 24: a guard's or shim's code changed during a call
THREAD_STARTED = "THREAD_STARTED"  # row 25: a thread was created during a call (joined or not)
NOT_WRITTEN_BY_KERNEL = "NOT_WRITTEN_BY_KERNEL"  # row 26: output bytes no kernel store wrote
PROGRAM_ORDER_DEPENDENT = "PROGRAM_ORDER_DEPENDENT"  # row 30: wrong in another grid order
AUTOTUNE_CONFIG_WRONG = "AUTOTUNE_CONFIG_WRONG"  # row 31: an autotune config the CPU skipped
DRIFT = "DRIFT"  # row 19: wrong after the timing loop

# --- timing -------------------------------------------------------------------------------------
BELOW_ROOFLINE_FLOOR = "BELOW_ROOFLINE_FLOOR"  # row 20: faster than the hardware allows
WALL_CLOCK_MISMATCH = "WALL_CLOCK_MISMATCH"  # rows 3, 6: events disagree with the outside clock
NOT_RUN_NO_GPU = "NOT_RUN_NO_GPU"  # a CUDA candidate compiled, but there is no GPU to run it
# A Triton kernel the interpreter cannot run (inline PTX, TMA descriptors, ...): not verified on
# CPU, which is inconclusive like NOT_RUN_NO_GPU, not a finding against the candidate.
INTERPRETER_UNSUPPORTED = "INTERPRETER_UNSUPPORTED"

# --- containment (the sandbox did its job) ------------------------------------------------------
TIMEOUT = "TIMEOUT"
MEMORY_LIMIT = "MEMORY_LIMIT"
CRASHED = "CRASHED"  # the worker died on a signal (segfault, abort, rlimit)
CHANNEL_TAMPERED = "CHANNEL_TAMPERED"  # row 27: forged, malformed, flooding or out-of-order frames
DISK_LIMIT = "DISK_LIMIT"  # row 29: the work dir grew past its cap
EVALUATOR_ERROR = "EVALUATOR_ERROR"  # judging raised: our defect, reported with our traceback
WORKER_ERROR = "WORKER_ERROR"  # the worker failed for a reason of ours, not the candidate's

# --- the problem, not the candidate -------------------------------------------------------------
PROBLEM_ERROR = "PROBLEM_ERROR"  # the reference itself failed to load or run

STATIC_CODES = frozenset(
    {
        SYNTAX_ERROR,
        NO_MODELNEW,
        NO_KERNEL,
        KERNEL_NOT_LAUNCHED,
        TORCH_COMPUTE,
        EXCEPTION_FALLBACK,
        INHERITS_REFERENCE,
        THREADS,
        STREAMS,
        TIMER_PATCH,
        TENSOR_SUBCLASS,
        FORBIDDEN_IMPORT,
        DYNAMIC_CODE,
        FILE_ACCESS,
        INTROSPECTION,
        FORBIDDEN_MODULE,
        HOST_READS_VALUES,
    }
)
