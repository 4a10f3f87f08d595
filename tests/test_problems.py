"""Problems: loading, size profiles, overrides, KernelBench checkouts, and task hygiene."""

from __future__ import annotations

import textwrap

import pytest

from kernelloop.kernelbench import hygiene, loader
from kernelloop.kernelbench.problem import ProblemError, load_file, parse_value

KERNELBENCH_STYLE = textwrap.dedent(
    '''
    import torch
    import torch.nn as nn

    class Model(nn.Module):
        """Scales a matrix product."""
        def __init__(self, scale):
            super().__init__()
            self.scale = scale
        def forward(self, A, B):
            return torch.matmul(A, B) * self.scale

    M = 1024
    K = 2048
    N = M * 2

    def get_inputs():
        return [torch.randn(M, K), torch.randn(K, N)]

    def get_init_inputs():
        return [0.5]
    '''
)


def test_bundled_suite_has_the_promised_breadth():
    ids = loader.bundled_ids()
    by_level = {lvl: [i for i in ids if i.startswith(lvl + "/")] for lvl in loader.LEVELS}
    assert len(ids) >= 30
    assert len(by_level["level1"]) >= 18 and len(by_level["level2"]) >= 8
    assert len(by_level["level3"]) >= 4
    for problem in loader.load("bundled"):
        assert "cpu" in problem.sizes, problem.id
        assert problem.holdout, problem.id
        assert problem.summary, problem.id


def test_at_least_ten_bundled_solutions_exist():
    solved = [p for p in loader.load("bundled") if loader.solution_path(p)]
    assert len(solved) >= 10


def test_specs_resolve_ids_stems_levels_and_paths(repo):
    assert loader.load_one("01_relu").id == "level1/01_relu"
    assert [p.id for p in loader.load("level2")][0] == "level2/01_linear_bias_gelu"
    path = repo / "kernelbench/problems/level1/05_softmax.py"
    assert loader.load(str(path))[0].id == "level1/05_softmax"
    with pytest.raises(ProblemError, match="no single problem"):
        loader.load_one("does-not-exist")


def test_size_profiles_and_set_overrides_reach_the_inputs():
    problem = loader.load_one("level1/01_relu")
    cpu = problem.overrides_for("cpu")
    module = problem.instantiate(cpu)
    shape = module.get_inputs()[0].shape
    assert tuple(shape) == (cpu["batch_size"], cpu["dim"])
    module = problem.instantiate(problem.overrides_for("cpu", {"dim": 33}))
    assert module.get_inputs()[0].shape[-1] == 33
    with pytest.raises(ProblemError, match="no module constant"):
        problem.overrides_for("cpu", {"nope": 1})
    with pytest.raises(ProblemError, match="no size"):
        problem.overrides_for("tiny")


def test_plain_kernelbench_file_with_derived_constant(tmp_path):
    path = tmp_path / "1_Scaled_matmul.py"
    path.write_text(KERNELBENCH_STYLE)
    problem = load_file(path)
    assert problem.sizes == {} and problem.holdout == () and problem.dtype == "float32"
    assert problem.tolerance == {"atol": 1e-4, "rtol": 1e-4}
    # N = M * 2 follows an override of M because the file is executed with M rewritten.
    module = problem.instantiate(problem.overrides_for(None, {"M": 8, "K": 16}))
    a, b = module.get_inputs()
    assert a.shape == (8, 16) and b.shape == (16, 16)


def test_kernelbench_checkout_layout_and_natural_order(tmp_path):
    level = tmp_path / "KernelBench" / "level1"
    level.mkdir(parents=True)
    for n in (10, 2, 1):
        (level / f"{n}_Scaled_matmul.py").write_text(KERNELBENCH_STYLE)
    found = loader.load_kernelbench(tmp_path, level=1)
    assert [p.id for p in found] == [
        "kernelbench/level1/1_Scaled_matmul",
        "kernelbench/level1/2_Scaled_matmul",
        "kernelbench/level1/10_Scaled_matmul",
    ]
    with pytest.raises(ProblemError, match="KernelBench checkout"):
        loader.load_kernelbench(tmp_path, level=3)


def test_malformed_problem_files_are_reported(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("x = 1\n")
    with pytest.raises(ProblemError, match="missing"):
        load_file(bad)
    bad.write_text(KERNELBENCH_STYLE + "\nDTYPE = 'float64'\n")
    with pytest.raises(ProblemError, match="DTYPE"):
        load_file(bad)


def test_parse_value():
    assert parse_value("16") == 16 and parse_value("1e-3") == 1e-3
    assert parse_value("(3, 3)") == (3, 3) and parse_value("relu") == "relu"


@pytest.mark.parametrize("problem_id", loader.bundled_ids())
def test_every_bundled_problem_passes_hygiene(problem_id):
    report = hygiene.check(loader.load_one(problem_id))
    failed = {k: c.detail for k, c in report.checks.items() if not c.passed}
    assert report.passed, failed


def test_hygiene_flags_degenerate_problems(tmp_path):
    path = tmp_path / "degenerate.py"
    path.write_text(
        textwrap.dedent(
            """
            import torch
            import torch.nn as nn
            n = 64
            SIZES = {"cpu": {"n": 64}}
            HOLDOUT = [{"n": 5}]
            class Model(nn.Module):
                def forward(self, x, y):
                    return x * 1e-7          # tiny values, and y is ignored
            def get_inputs():
                return [torch.randn(n), torch.randn(n)]
            def get_init_inputs():
                return []
            """
        )
    )
    report = hygiene.check(load_file(path))
    assert not report.passed
    assert not report.checks["above_noise_floor"].passed
    assert not report.checks["depends_on_input_1"].passed
    assert report.checks["depends_on_input_0"].passed is False  # below tolerance either way


def test_a_tiny_gpu_size_is_refused_unless_it_is_a_real_models(tmp_path):
    """Row 15: a benchmark chosen too small is launch overhead, and refused; a captured model's
    own size (REAL_SIZE) is what the user runs, so it is reported instead."""
    from kernelloop.kernelbench import hygiene
    from kernelloop.kernelbench.problem import load_file

    source = (
        "import torch\nimport torch.nn as nn\n\nN = 64\n{decl}\n\n"
        "class Model(nn.Module):\n    def forward(self, x):\n        return torch.relu(x) * 2\n\n"
        "def get_inputs():\n    return [torch.randn(N, N)]\n\n"
        "def get_init_inputs():\n    return []\n"
    )
    chosen, real = tmp_path / "chosen.py", tmp_path / "real.py"
    chosen.write_text(source.format(decl=""))
    real.write_text(source.format(decl="REAL_SIZE = True"))
    refused = hygiene.check(load_file(chosen)).checks["gpu_size_not_tiny"]
    reported = hygiene.check(load_file(real)).checks["gpu_size_not_tiny"]
    assert not refused.passed and "launch overhead would dominate" in refused.detail
    assert reported.passed and "the model's real size" in reported.detail
