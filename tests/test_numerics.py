"""The float comparison rule (testkit/numerics.py) itself: it passes what is within budget and fails what is not."""
import pytest
import torch

from testkit.numerics import BUDGET, assert_agree, assert_close, eps


def off_by(ulps, dtype=torch.float32, scale=4.0):
    """A float64 reference and a `dtype` result `ulps` ulps (at the reference's scale) away from it."""
    want = torch.linspace(-scale, scale, 9, dtype=torch.float64)
    got = (want + torch.tensor([0.0] * 4 + [ulps * eps(dtype) * scale] + [0.0] * 4, dtype=torch.float64)).to(dtype)
    return got, want


@pytest.mark.parametrize("depth", list(BUDGET))
def test_within_budget_passes_and_over_it_fails(depth):
    assert_close(*off_by(BUDGET[depth] * 0.9), depth)
    with pytest.raises(AssertionError, match=f"over the {depth} budget"):
        assert_close(*off_by(BUDGET[depth] * 1.5), depth)


def test_budget_follows_the_result_precision():
    got, want = off_by(BUDGET["layer"] * 0.9, torch.float16)
    assert_close(got, want)  # in half ulps: fine
    with pytest.raises(AssertionError):
        assert_close(got.float(), want)  # the same error is far over budget for a float32 result


def test_reference_must_be_float64_and_result_finite():
    got, want = off_by(0)
    with pytest.raises(AssertionError, match="must be float64"):
        assert_close(got, want.float())
    got[0] = float("nan")
    with pytest.raises(AssertionError, match="non-finite"):
        assert_close(got, want)


def test_agree_allows_each_side_its_budget():
    got, want = off_by(BUDGET["network"] * 1.5)
    assert_agree(got, want.float(), "network")
    with pytest.raises(AssertionError):
        assert_agree(*[t.float() for t in off_by(BUDGET["network"] * 3)], "network")
