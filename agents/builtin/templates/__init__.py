"""The builtin coder's templates, in the order the planner tries them.

``HEAVY`` templates may claim ops before their anchor (see ``plan.py``) and are matched first
over the whole graph; ``LIGHT`` ones are then tried op by op, most specific first (an elementwise
chain is the catch-all for what remains, views the last resort).
"""

from __future__ import annotations

from .attention import Attention
from .conv import Conv2d
from .cross_entropy import CrossEntropy
from .elementwise import Elementwise
from .layout import Layout
from .matmul import Matmul
from .norm import Norm
from .pool import MaxPool2d
from .qlinear import QLinear
from .reduction import Reduction
from .scan import CumSum
from .softmax import Softmax

HEAVY: list = [Attention(), QLinear(), Matmul(), Conv2d()]
LIGHT: list = [
    Reduction(),
    Softmax(),
    CrossEntropy(),
    Norm(),
    MaxPool2d(),
    CumSum(),
    Elementwise(),
    Layout(),
]
BY_NAME = {t.name: t for t in (*HEAVY, *LIGHT)}
