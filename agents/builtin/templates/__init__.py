"""The builtin coder's templates, in the order the planner tries them.

``HEAVY`` templates may claim ops before their anchor (see ``plan.py``) and are matched first
over the whole graph; ``LIGHT`` ones are then tried op by op, most specific first (an elementwise
chain is the catch-all for what remains, views the last resort).
"""

from __future__ import annotations

from .attention import Attention
from .conv import Conv2d
from .convnd import Conv, ConvTranspose
from .cross_entropy import CrossEntropy
from .elementwise import Elementwise
from .fill import Arange, Fill, Triangle
from .gather import Concat, Embedding
from .layout import Layout
from .loss import Broadcast, Loss
from .matmul import Matmul
from .matmul_misc import DiagMatmul, Einsum, Gemv, TriMatmul
from .norm import Norm
from .pad import Pad
from .pool import MaxPool2d
from .pool_nd import Pool
from .prelu import PReLU
from .qlinear import QLinear
from .reduction import Reduction
from .resize import PixelShuffle, Resize
from .rowloss import RowLoss
from .scan import CumSum
from .softmax import Softmax
from .stat_norm import StatNorm
from .vector_norm import VectorNorm

HEAVY: list = [
    Attention(),
    QLinear(),
    Einsum(),
    TriMatmul(),
    DiagMatmul(),
    Gemv(),
    Matmul(),
    Conv2d(),
    Conv(),
    ConvTranspose(),
]
LIGHT: list = [
    Loss(),  # before Reduction: whole-tensor sums and their elementwise terms
    RowLoss(),
    Reduction(),
    Softmax(),
    CrossEntropy(),
    Norm(),
    StatNorm(),
    VectorNorm(),
    MaxPool2d(),
    Pool(),
    Resize(),
    PixelShuffle(),
    PReLU(),
    Pad(),
    CumSum(),
    Concat(),
    Embedding(),
    Fill(),
    Triangle(),
    Arange(),
    Elementwise(),
    Layout(),
    Broadcast(),
]
BY_NAME = {t.name: t for t in (*HEAVY, *LIGHT)}
