"""Float comparisons that hold on any x86-64 CPU (the rule is in CONTRIBUTING.md, "Float comparisons").

torch picks its float kernels by machine (AVX2, AVX-512, AMX; its own, MKL's or oneDNN's), and they sum in
different orders: the same float32 computation lands a few ulps apart on two machines, and an absolute
tolerance tuned on one fails on the other. So a result is compared with a reference computed in float64,
and the allowed error is a number of ulps of the result's own precision at the reference's scale:

    max |got - want| <= ulps * eps(dtype of got) * scale,   scale = max |want| unless given

`ulps` is the depth budget of the operation under test (see BUDGET); `scale` is given where a result is a
small difference of large terms (its error follows the terms, not the result).
"""
import os

import torch

# Error budgets in ulps of the result's scale, by depth of the computation: several times the largest error
# measured on an AVX-512/AMX machine and on the same machine emulating AVX2 (CONTRIBUTING.md has the figures
# and says how to measure them again: PULID_ULPS_LOG=<file> appends one line per comparison).
BUDGET = {
    "elementwise": 8,  # a few roundings per element: normalise, blend, mask
    "layer": 128,  # one matmul, attention or resize (weighted sums of up to a few thousand terms)
    "network": 512,  # several layers: an encoder, a transformer tower, a UNet step
}


def eps(dtype) -> float:
    return torch.finfo(dtype).eps


def as_tensor(x):
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)


def error_ratio(got, want, *, dtype=None, scale=None) -> float:
    """max |got - want| in ulps of `dtype` (got's by default) at `scale` (max |want| by default)."""
    got, want = as_tensor(got), as_tensor(want)
    dtype = dtype or got.dtype
    error = (got.double() - want.double()).abs().max().item()
    scale = want.double().abs().max().item() if scale is None else float(scale)
    return error / (eps(dtype) * max(scale, torch.finfo(torch.float64).tiny))


def assert_close(got, want, depth="layer", *, dtype=None, scale=None, msg=""):
    """Assert `got` agrees with the float64 reference `want` within BUDGET[depth] ulps of its scale."""
    got, want = as_tensor(got), as_tensor(want)
    assert got.shape == want.shape, f"{msg} shape {tuple(got.shape)} != {tuple(want.shape)}"
    assert want.dtype == torch.float64, f"{msg} the reference must be float64, not {want.dtype}"
    assert torch.isfinite(got).all(), f"{msg} the result holds non-finite values"
    ratio = error_ratio(got, want, dtype=dtype, scale=scale)
    budget = BUDGET[depth]
    if os.environ.get("PULID_ULPS_LOG"):
        with open(os.environ["PULID_ULPS_LOG"], "a", encoding="utf-8") as log:
            test = os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0]
            log.write(f"{ratio:10.2f} {depth:11} {got.dtype} {test} {msg}\n")
    assert ratio <= budget, (f"{msg} max difference is {ratio:.1f} ulps of {dtype or got.dtype} at the output "
                             f"scale, over the {depth} budget of {budget}")


def assert_agree(a, b, depth="network", *, msg=""):
    """Two results of one computation by different routes, in the same precision, where no float64
    reference exists (a whole sampling run through ComfyUI): each may be off by the budget, so they
    agree within twice it, at the scale of the larger."""
    a, b = as_tensor(a), as_tensor(b)
    assert a.dtype == b.dtype and a.shape == b.shape, f"{msg} {a.dtype}{tuple(a.shape)} vs {b.dtype}{tuple(b.shape)}"
    scale = max(a.double().abs().max().item(), b.double().abs().max().item())
    assert_close(a, b.double(), depth, dtype=a.dtype, scale=2 * scale, msg=msg)  # twice the budget
