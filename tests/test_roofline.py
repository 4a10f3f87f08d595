"""Work estimates (counted on meta and CPU), roofline floor and classification maths."""

from __future__ import annotations

import pytest
import torch

from kernelloop.feedback.gpu_specs import lookup
from kernelloop.feedback.roofline import (
    Work,
    achieved,
    attainable_seconds,
    classify,
    estimate_work,
    floor_seconds,
    fraction_of_roofline,
)

H100 = lookup("NVIDIA H100 80GB HBM3")  # 3.35 TB/s, 989.5 dense BF16 TFLOP/s


class MatMul(torch.nn.Module):
    def forward(self, a, b):
        return a @ b


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_matmul_flops_are_2mnk_and_bytes_are_compulsory(device):
    m, n, k = 64, 32, 48
    a = torch.empty(m, k, device=device, dtype=torch.float16)
    b = torch.empty(k, n, device=device, dtype=torch.float16)
    work = estimate_work(MatMul(), [a, b])
    assert work.flops == 2 * m * n * k and work.flops_source == "counted"
    assert work.bytes == 2 * (m * k + k * n + m * n)


def test_meta_model_sizes_a_gpu_problem_without_computing():
    model = torch.nn.Linear(4096, 8192, device="meta", dtype=torch.bfloat16)
    x = torch.empty(1024, 4096, device="meta", dtype=torch.bfloat16)
    work = estimate_work(model, [x])
    assert work.flops == 2 * 1024 * 4096 * 8192
    params = (4096 * 8192 + 8192) * 2
    assert work.bytes == params + 1024 * 4096 * 2 + 1024 * 8192 * 2


def test_elementwise_ops_count_no_flops_but_all_bytes():
    x = torch.empty(1000, device="meta")
    work = estimate_work(torch.nn.ReLU(), [x])
    assert (work.flops, work.bytes, work.flops_source) == (0, 8000, "none")


def test_same_tensor_passed_twice_is_read_once():
    x = torch.empty(10, 10, device="meta")
    assert estimate_work(MatMul(), [x, x]).bytes == 400 + 400


def test_declared_figures_override_and_skip_the_run():
    class Exploding(torch.nn.Module):
        def forward(self, x):
            raise AssertionError("must not run when both figures are declared")

    work = estimate_work(Exploding(), [], declared_flops=1e9, declared_bytes=2e6)
    assert work == Work(1e9, 2e6, "declared")
    work = estimate_work(MatMul(), [torch.ones(2, 3), torch.ones(3, 4)], declared_flops=7)
    assert (work.flops, work.flops_source, work.bytes) == (7, "declared", 4 * (6 + 12 + 8))


def test_a_model_that_fails_says_what_to_do():
    class NoMeta(torch.nn.Module):
        def forward(self, x):
            return x.item()  # meta tensors have no data

    with pytest.raises(RuntimeError, match="declared_flops and declared_bytes"):
        estimate_work(NoMeta(), [torch.empty(1, device="meta")])


def test_floor_is_the_slower_of_the_two_roofs():
    memory_bound = Work(flops=1e9, bytes=3.35e9, flops_source="counted")  # 1 ms of DRAM traffic
    assert floor_seconds(memory_bound, H100, torch.bfloat16) == pytest.approx(1e-3)
    compute_bound = Work(flops=989.5e12 * 2e-3, bytes=1e6, flops_source="counted")  # 2 ms of math
    assert floor_seconds(compute_bound, H100, torch.bfloat16) == pytest.approx(2e-3)
    # float32 uses the TF32 tensor-core peak (494.5), half the BF16 rate.
    assert floor_seconds(compute_bound, H100, torch.float32) == pytest.approx(4e-3, rel=1e-3)
    assert attainable_seconds(compute_bound, H100, torch.bfloat16) == pytest.approx(2e-3)


def test_classify_rule():
    memory = Work(flops=0, bytes=3.35e9, flops_source="none")  # floor 1 ms
    assert classify(memory, H100, torch.float16, 1.5e-3) == "memory-bound"
    assert classify(memory, H100, torch.float16, 25e-3) == "latency-bound"  # > 20x floor
    compute = Work(flops=989.5e12 * 1e-3, bytes=1e6, flops_source="counted")  # floor 1 ms
    assert classify(compute, H100, torch.float16, 1.2e-3) == "compute-bound"
    tiny = Work(flops=1e6, bytes=1e6, flops_source="counted")  # floor well under 5 us
    assert classify(tiny, H100, torch.float16, 4e-6) == "latency-bound"


def test_fraction_and_achieved_rates():
    work = Work(flops=2e12, bytes=3.35e9, flops_source="counted")  # floor 2.02 ms (compute)
    floor = floor_seconds(work, H100, torch.bfloat16)
    assert fraction_of_roofline(work, H100, torch.bfloat16, 2 * floor) == pytest.approx(0.5)
    assert fraction_of_roofline(work, H100, torch.bfloat16, floor / 2) == pytest.approx(2.0)
    assert achieved(work, 1e-3) == pytest.approx((3.35e12, 2e15))
    with pytest.raises(ValueError, match="positive"):
        achieved(work, 0.0)


def test_work_round_trips_through_json_dict():
    work = Work(flops=12.0, bytes=34.0, flops_source="counted")
    assert Work.from_dict(work.to_dict()) == work
    assert work.intensity == pytest.approx(12 / 34)
