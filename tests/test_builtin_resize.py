"""Builtin resizing (``templates/resize.py``): ``F.interpolate`` and ``nn.Upsample`` in the
modes decoders use (nearest by a factor, bilinear to a skip connection's size, align_corners,
nearest-exact, trilinear, 1-d linear) and pixel (un)shuffle, accepted by the real evaluator at
a CPU size and a hold-out; and what the template leaves to others."""

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
    def forward(self, x, skip):
        return {expr}


def get_inputs():
    return [torch.randn({shape}), torch.randn(n, c, 2 * h + 1, 2 * w - 1)]


def get_init_inputs():
    return []
"""


@pytest.mark.parametrize(
    ("expr", "shape"),
    [
        # A UNet decoder: nearest by 2, then a conv elsewhere.
        ('F.interpolate(x, scale_factor=2, mode="nearest")', "n, c, h, w"),
        # Non-integer factors: the index scale is 1 / factor, as PyTorch computes it.
        ('F.interpolate(x, scale_factor=1.5, mode="nearest")', "n, c, h, w"),
        ('F.interpolate(x, scale_factor=(2, 3), mode="nearest-exact")', "n, c, h, w"),
        # An FPN or a segmentation head: bilinear to another tensor's size (odd here).
        ('F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)',
         "n, c, h, w"),
        ('nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)(x)', "n, c, h, w"),
        ('F.interpolate(x, scale_factor=2, mode="bilinear")', "n, c, h, w"),
        ('F.interpolate(x, size=(9, 4), mode="bilinear")', "n, c, h, w"),
        # A channels-last input is read in place.
        ('F.interpolate(x.permute(0, 3, 1, 2), scale_factor=2, mode="nearest")', "n, h, w, c"),
        # 3-d and 1-d.
        ('F.interpolate(x, scale_factor=2, mode="trilinear")', "n, c, 3, h, w"),
        ('F.interpolate(x, scale_factor=2, mode="nearest")', "n, c, 3, h, w"),
        ('F.interpolate(x, scale_factor=3, mode="linear", align_corners=True)', "n, c, h"),
        ('F.interpolate(x, scale_factor=2, mode="nearest")', "n, c, h"),
        # A super-resolution upsampler and its inverse (space-to-depth).
        ("F.pixel_shuffle(x, 2)", "n, 4 * c, h, w"),
        ("F.pixel_unshuffle(x, 2)", "n, c, 2 * h, 2 * w"),
        ("F.pixel_shuffle(x.transpose(2, 3), 3)", "n, 9 * c, h, w"),
    ],
)  # fmt: skip
def test_resizes_are_accepted(tmp_path, expr, shape):
    problem, overrides, graph = traced_text(tmp_path, _PROBLEM.format(expr=expr, shape=shape))
    pl, source = generate(problem, overrides, graph)
    assert pl.ok, pl.describe()
    assert kernel_templates(pl) in (["resize"], ["pixel_shuffle"])
    assert_accepted(problem, source)


_UP_CONV = """
import torch
import torch.nn as nn
import torch.nn.functional as F

n = 2
c = 8
h = 12
SIZES = {"cpu": {"n": 2, "c": 4, "h": 6}}
HOLDOUT = [{"n": 1, "c": 4, "h": 7}]


class Model(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def get_inputs():
    return [torch.randn(n, c, h, h)]


def get_init_inputs():
    return []
"""


def test_a_decoder_upsample_block_is_one_plan(tmp_path):
    problem, overrides, graph = traced_text(tmp_path, _UP_CONV)
    pl, source = generate(problem, overrides, graph)
    assert pl.ok, pl.describe()
    assert kernel_templates(pl)[0] == "resize"
    assert_accepted(problem, source)


@pytest.mark.parametrize(
    "expr",
    [
        'F.interpolate(x, scale_factor=2, mode="bicubic")',
        'F.interpolate(x, scale_factor=2, mode="bilinear", antialias=True)',
    ],
)
def test_bicubic_and_antialiased_resizes_are_left_uncovered(tmp_path, expr):
    problem, overrides, graph = traced_text(
        tmp_path, _PROBLEM.format(expr=expr, shape="n, c, h, w")
    )
    pl = plan.plan(graph)
    assert not pl.ok and "resize" not in kernel_templates(pl)
    assert "upsample" in pl.describe()
