"""The Ray executor: each evaluation is a Ray task that holds one GPU while it runs.

``kernelloop optimize ... --executor ray --ray-address ADDR`` connects to a running cluster (``ray
start --head`` on one machine, ``ray start --address HEAD:6379`` on the others, kernelloop
installed at the same version everywhere); without an address a local Ray instance is started.
The driver (the machine running ``optimize``) keeps the run store, the LLM clients and the agent
graph; only evaluations travel. A task runs the one evaluator in a Ray worker process, which
starts the candidate's sandboxed workers on its node exactly as the local executor does, and sends
back the verdict as JSON-ready data.

Scheduling: a task asks for ``num_gpus=1`` when the cluster has GPUs, so Ray runs one evaluation
per GPU at a time and sets ``CUDA_VISIBLE_DEVICES`` for it (the sandbox passes that on to the
workers). ``gpu_resource`` names a custom resource instead (clusters that label GPU nodes their
own way, and the CPU tests, which declare GPUs as a custom resource to exercise this logic).
Without GPUs a task asks for one CPU.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from ...kernelbench.problem import Problem
from ..verdict import Verdict
from .base import EvalSpec

INSTALL_HINT = "--executor ray needs Ray: pip install 'kernelloop[cluster]'"


def _evaluate_task(problem: Problem, source: str, kwargs: dict[str, Any]) -> dict:
    """Runs in a Ray worker process (never in the driver): the one evaluator, as data."""
    from ..evaluate import evaluate

    return evaluate(problem, source, **kwargs).to_dict()


class RayExecutor:
    name = "ray"

    def __init__(
        self,
        spec: EvalSpec,
        *,
        address: str | None = None,
        gpu_resource: str | None = None,
    ):
        try:
            import ray
        except ImportError:
            raise RuntimeError(INSTALL_HINT) from None
        self.spec = spec
        self._owns_ray = not ray.is_initialized()  # a test (or the caller) may have started it
        if self._owns_ray:
            try:
                ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
            except ConnectionError as exc:
                raise RuntimeError(
                    f"no Ray cluster answers at {address!r}: start one with `ray start --head` "
                    f"and pass its address (HOST:6379), or leave out --ray-address ({exc})"
                ) from None
        resources = ray.cluster_resources()
        if gpu_resource is None and resources.get("GPU"):
            gpu_resource = "GPU"
        if gpu_resource is not None and not resources.get(gpu_resource):
            raise RuntimeError(
                f"the Ray cluster has no {gpu_resource!r} resource (it has {sorted(resources)})"
            )
        self.gpu_resource = gpu_resource
        options: dict[str, Any] = {"num_cpus": 1}
        if gpu_resource == "GPU":
            options["num_gpus"] = 1
        elif gpu_resource:
            options["resources"] = {gpu_resource: 1}
        self.task_options = options
        self.parallelism = max(1, int(resources.get(gpu_resource or "CPU", 1)))
        # One retry: a task lost with its node is evaluated again elsewhere; a candidate's own
        # failure is a verdict, never an exception, so it is not retried.
        self._task = ray.remote(_evaluate_task).options(**options, max_retries=1)

    def submit(self, problem: Problem, source: str) -> Future[Verdict]:
        ref = self._task.remote(problem, source, self.spec.kwargs())
        done: Future[Verdict] = Future()

        def settle(raw: Future) -> None:
            try:
                done.set_result(Verdict.from_dict(raw.result()))
            except BaseException as exc:
                done.set_exception(exc)

        ref.future().add_done_callback(settle)
        return done

    def __call__(self, problem: Problem, source: str) -> Verdict:
        return self.submit(problem, source).result()

    def close(self) -> None:
        if self._owns_ray:
            import ray

            ray.shutdown()
