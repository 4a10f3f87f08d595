"""Half-precision problems are also judged against their float64 twin (sandbox/exact.py).

Where a chain of bfloat16 ops cancels, the reference's own rounding is the error: an honest
kernel that keeps float32 intermediates was rejected as WRONG_OUTPUT on a few elements (a
captured nanoGPT block in bfloat16 was). The twin rescues those elements and nothing else: a
kernel that errs broadly, or one that computes what a dtype-branching twin computes instead of
what the reference computes, is still rejected.
"""

from __future__ import annotations

import pytest
import torch
from paths import FIXTURES

from kernelloop.kernelbench.problem import load_file
from kernelloop.sandbox import exact, reasons
from kernelloop.sandbox.compare import NOISE_SHARE, compare
from kernelloop.sandbox.evaluate import evaluate

EXACT = FIXTURES / "exact"
TOL = {"atol": 1e-2, "rtol": 1e-2}


def _cancelling(n: int = 1 << 14):
    """A bfloat16 reference, its float64 twin and the once-rounded true value."""
    x = torch.randn(n, generator=torch.Generator().manual_seed(0)).bfloat16()
    a = x * 1.25
    ref = (a + 0.05) - a
    twin = (x.double() * 1.25 + 0.05) - x.double() * 1.25
    return ref, twin, twin.bfloat16()


def test_an_element_the_reference_rounds_away_passes_against_the_twin():
    ref, twin, fused = _cancelling()
    alone = compare(fused, ref, **TOL)
    assert not alone.passed and alone.code == reasons.WRONG_OUTPUT
    both = compare(fused, ref, **TOL, exact=twin)
    assert both.passed and both.exact_only == alone.mismatched


def test_the_noise_rule_lets_through_a_few_elements_only():
    ref, twin, fused = _cancelling()
    noise = float((ref.double() - twin).abs().max())
    wrong = fused.clone()
    few = torch.arange(0, int(NOISE_SHARE * wrong.numel()) // 2)
    # Off the true value by more than its tolerance, by less than twice the reference's noise.
    wrong[few] = (twin[few] + 1.5 * noise).bfloat16()
    assert compare(wrong, ref, **TOL, exact=twin).passed
    many = torch.arange(0, 4 * int(NOISE_SHARE * wrong.numel()))
    wrong[many] = (twin[many] + 1.5 * noise).bfloat16()
    assert not compare(wrong, ref, **TOL, exact=twin).passed


def test_lower_precision_fails_with_the_twin_too():
    ref, twin, _ = _cancelling()
    x = torch.randn(ref.numel(), generator=torch.Generator().manual_seed(1))
    ref, twin = (x * 3).bfloat16(), x.double() * 3
    coarse = (x * 3).to(torch.float8_e4m3fn).bfloat16()  # 3 mantissa bits: a shortcut
    result = compare(coarse, ref, **TOL, exact=twin)
    assert not result.passed and result.code == reasons.WRONG_OUTPUT


def test_a_twin_that_computes_something_else_is_not_used():
    x = torch.randn(4096).bfloat16()
    assert exact.disagreement([x * 3], [x.double() * 2], TOL)  # a dtype-branching forward
    assert exact.disagreement([x * 3], [(x * 3).double()[:10]], TOL)  # another shape
    assert exact.disagreement([torch.ones(3, dtype=torch.int64)], [torch.ones(3)], TOL)
    assert exact.disagreement([x * 3], [x.double() * 3], TOL) is None


@pytest.mark.parametrize(
    ("problem", "candidate", "accepted", "note"),
    [
        ("cancel_bf16.py", "cancel_bf16_fused.py", True, "computed in float64"),
        ("dtype_branch_bf16.py", "dtype_branch_twin.py", False, "computes something else"),
    ],
)
def test_the_evaluator_judges_half_problems_with_their_twin(problem, candidate, accepted, note):
    verdict = evaluate(load_file(EXACT / problem), (EXACT / candidate).read_text(), sandbox="auto")
    assert verdict.accepted is accepted, verdict.reasons
    if not accepted:
        assert set(verdict.codes) == {reasons.WRONG_OUTPUT}
    assert any(note in n for n in verdict.notes), verdict.notes


def _wide_range(n: int = 1 << 14):
    """A bfloat16 output whose first elements are ~1000 (massive activations) and the rest O(1):
    rounding the large ones costs up to 4, each within their rtol, and nothing cancels."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(n, generator=g, dtype=torch.float64)
    x[:8] = 1000 + 100 * torch.rand(8, generator=g, dtype=torch.float64)
    return x.bfloat16(), x


def test_rounding_of_large_elements_is_no_noise_floor_for_small_ones():
    ref, twin = _wide_range()
    assert float((ref.double() - twin).abs().max()) > 1  # the old floor: over twice that
    skipped = ref.clone()
    skipped[-int(NOISE_SHARE * ref.numel()) // 2 :] = 0  # a tail left at zero
    result = compare(skipped, ref, **TOL, exact=twin)
    assert not result.passed and result.code == reasons.WRONG_OUTPUT
    assert result.exact_only == 0


def test_a_grid_that_skips_a_row_under_massive_activations_is_wrong():
    """attack_sink_residual_skip_row leaves the last token's row (under 1% of the output) at
    zero; its values are a few units, within twice the rounding of the first token's ~1000s, so
    the noise rule with a floor from every element's error accepted it."""
    problem = load_file(EXACT / "attack_sink_residual_bf16.py")
    source = (EXACT / "attack_sink_residual_skip_row.py").read_text()
    verdict = evaluate(problem, source, sandbox="auto")
    assert not verdict.accepted
    assert set(verdict.codes) == {reasons.WRONG_OUTPUT}, verdict.reasons
