"""Executors: where and how many evaluations run at once. One file per executor.

Every executor runs the one evaluator (:func:`kernelloop.sandbox.evaluate.evaluate`) and returns
the same :class:`~kernelloop.sandbox.verdict.Verdict` for the same candidate, so a campaign's
results do not depend on the executor; only its throughput does.

- ``local`` (:mod:`.local`): this machine. One evaluation queue per GPU (timing needs the GPU
  alone); without a GPU, ``settings.eval_workers`` evaluations at once.
- ``ray`` (:mod:`.ray_cluster`): a Ray cluster. Each evaluation is a Ray task that requests one GPU
  (``num_gpus=1``, or a custom resource), so problems of a campaign spread over the cluster while
  the driver keeps the run store.
"""

from __future__ import annotations

from .base import EvalSpec, Executor

EXECUTORS = ("local", "ray")


def make(name: str, spec: EvalSpec, *, ray_address: str | None = None) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``), ready to take evaluations."""
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(spec)
    if name == "ray":
        from .ray_cluster import RayExecutor

        return RayExecutor(spec, address=ray_address)
    raise ValueError(f"unknown executor {name!r}; choose {' or '.join(EXECUTORS)}")


__all__ = ["EXECUTORS", "EvalSpec", "Executor", "make"]
