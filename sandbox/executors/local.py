"""The local executor: one evaluation queue per GPU, or a small pool on a CPU-only machine.

A GPU times one candidate at a time (two kernels sharing it would each report the other's
contention), so each GPU gets a queue served by one thread, and that thread's evaluations see
only their GPU (``launch.assigned_gpu`` -> ``CUDA_VISIBLE_DEVICES`` in every worker). A new
evaluation goes to the queue with the least work waiting. Without a GPU, evaluations only check
correctness under the Triton interpreter, so ``settings.eval_workers`` of them run at once.

Isolation does not change: each evaluation still starts its own workers in the chosen sandbox.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from ... import settings as settings_mod
from ...kernelbench.problem import Problem
from .. import evaluate as evaluate_mod
from .. import launch, spare
from ..verdict import Verdict
from .base import EvalSpec


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class LocalExecutor:
    name = "local"

    def __init__(self, spec: EvalSpec, *, gpus: int | None = None, cpu_workers: int | None = None):
        self.spec = spec
        self.gpus = gpu_count() if gpus is None else gpus
        if self.gpus:
            self._queues = [
                ThreadPoolExecutor(1, thread_name_prefix=f"kernelloop-gpu{i}")
                for i in range(self.gpus)
            ]
            self.parallelism = self.gpus
        else:
            workers = cpu_workers or settings_mod.get().eval_workers
            self._queues = [ThreadPoolExecutor(workers, thread_name_prefix="kernelloop-eval")]
            self.parallelism = workers
        self._waiting = [0] * len(self._queues)
        self._lock = threading.Lock()

    def _run(self, index: int, problem: Problem, source: str) -> Verdict:
        token = launch.assigned_gpu.set(index if self.gpus else None)
        try:
            # More evaluations follow: each leaves the next one's worker starting up.
            return evaluate_mod.evaluate(problem, source, warm_next=True, **self.spec.kwargs())
        finally:
            launch.assigned_gpu.reset(token)
            with self._lock:
                self._waiting[index] -= 1

    def submit(self, problem: Problem, source: str) -> Future[Verdict]:
        with self._lock:
            index = min(range(len(self._queues)), key=self._waiting.__getitem__)
            self._waiting[index] += 1
        return self._queues[index].submit(self._run, index, problem, source)

    def __call__(self, problem: Problem, source: str) -> Verdict:
        return self.submit(problem, source).result()

    def close(self) -> None:
        for queue in self._queues:
            queue.shutdown(wait=True)
        spare.discard_all()  # the workers left for evaluations that will not come
