"""Builtin padding (``templates/pad.py``): zero, constant, reflection and replication pads of
one to three dims, cropping by negative pads, strided inputs, and a GAN generator's reflection
pad before its conv; accepted by the real evaluator at a CPU size and a hold-out."""

from __future__ import annotations

import pytest
from builtin_support import assert_accepted, generate, kernel_templates, traced_text

from kernelloop.agents.builtin import plan

_PROBLEM = """
import torch
import torch.nn as nn
import torch.nn.functional as F

n = 2
c = 8
h = 12
w = 10
SIZES = {{"cpu": {{"n": 2, "c": 3, "h": 6, "w": 5}}}}
HOLDOUT = [{{"n": 1, "c": 5, "h": 7, "w": 9}}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3)

    def forward(self, x):
        return {expr}


def get_inputs():
    return [torch.randn({shape})]


def get_init_inputs():
    return []
"""


@pytest.mark.parametrize(
    ("expr", "shape"),
    [
        ("F.pad(x, (1, 2, 0, 1))", "n, c, h, w"),
        ("nn.ZeroPad2d(1)(x)", "n, c, h, w"),
        ('F.pad(x, (1, 1), value=0.5)', "n, c, h, w"),
        ("F.pad(x, (-1, 2, 1, -2))", "n, c, h, w"),  # negative pads crop
        ("nn.ReflectionPad2d(2)(x)", "n, c, h, w"),
        ("nn.ReplicationPad2d((1, 0, 2, 1))(x)", "n, c, h, w"),
        ("nn.ReflectionPad2d(1)(x.transpose(2, 3))", "n, c, h, w"),
        ("nn.ReflectionPad1d(3)(x)", "n, c, h"),
        ("nn.ReplicationPad3d(1)(x)", "n, c, 3, h, w"),
        ('F.pad(x, (1, 1, 1, 1, 1, 1), value=-1.0)', "n, c, 3, h, w"),
        # CycleGAN's ResNet block: reflection pad, then a 3x3 conv without padding.
        ("self.conv(nn.ReflectionPad2d(1)(x))", "n, 4, h, w"),
    ],
)  # fmt: skip
def test_pads_are_accepted(tmp_path, expr, shape):
    problem, overrides, graph = traced_text(tmp_path, _PROBLEM.format(expr=expr, shape=shape))
    pl, source = generate(problem, overrides, graph)
    assert pl.ok, pl.describe()
    assert "pad" in kernel_templates(pl)
    assert_accepted(problem, source)


_TO_SKIP = """
import torch
import torch.nn as nn
import torch.nn.functional as F

n = 2
h = 9
s = 19
SIZES = {"cpu": {"n": 2, "h": 5, "s": 11}}
HOLDOUT = [{"n": 1, "h": 6, "s": 15}]


class Model(nn.Module):
    def forward(self, x, skip):  # a UNet decoder padding its upsampled input to the skip's size
        dy = skip.size(2) - x.size(2)
        dx = skip.size(3) - x.size(3)
        x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
        return torch.cat([skip, x], dim=1)


def get_inputs():
    return [torch.randn(n, 4, h, h), torch.randn(n, 4, s, s)]


def get_init_inputs():
    return []
"""


def test_pads_that_follow_the_size_are_refused_not_baked(tmp_path):
    _, _, graph = traced_text(tmp_path, _TO_SKIP)
    pl = plan.plan(graph)
    assert not pl.ok and "pad" in pl.describe()
