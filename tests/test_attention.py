"""ID attention and K/V projection against plain per-head references written from the PuLID formulas."""
import math

import pytest
import torch

from pulid.attention import (
    DEFAULT_WEIGHT,
    PRESETS,
    id_attention,
    project_id_tokens,
    resolve_preset,
)
from pulid.errors import PulidError
from testkit.numerics import assert_close


def ref_project(tokens, wk, wv, num_zero):
    zeros = torch.zeros(tokens.shape[0], num_zero, tokens.shape[2], dtype=torch.float64)
    x = torch.cat([tokens.double(), zeros], dim=1)
    return x @ wk.double().T, x @ wv.double().T


def ref_id_attention(q, out, k, v, heads, weight, ortho):
    """Loop over samples and heads; float64 throughout."""
    q, out, k, v = q.double(), out.double(), k.double(), v.double()
    b, n, c = q.shape
    d = c // heads
    id_out = torch.zeros(b, n, c, dtype=torch.float64)
    share = torch.zeros(b, n, 1, dtype=torch.float64)
    for s in range(b):
        for h in range(heads):
            sl = slice(h * d, (h + 1) * d)
            logits = q[s, :, sl] @ k[s, :, sl].T
            id_out[s, :, sl] = torch.softmax(logits / math.sqrt(d), dim=-1) @ v[s, :, sl]
            share[s, :, 0] += torch.softmax(logits, dim=-1)[:, :5].sum(dim=-1) / heads
    if ortho == "off":
        return out + weight * id_out
    proj = torch.zeros_like(out)
    for s in range(b):  # per sample and channel: coefficient = <out, id> / <out, out> over positions
        o, i = out[s], id_out[s]
        proj[s] = torch.einsum("nc,nc->c", o, i) / torch.einsum("nc,nc->c", o, o) * o
    if ortho == "v1":
        return out + weight * (id_out - proj)
    return out + weight * (id_out + (share - 1) * proj)


def make_inputs(b=2, n=64, width=640, tokens=10, num_zero=0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, n, width, generator=g)
    out = torch.randn(b, n, width, generator=g)
    id_tokens = torch.randn(b, tokens, 2048, generator=g)
    wk = 0.02 * torch.randn(width, 2048, generator=g)
    wv = 0.02 * torch.randn(width, 2048, generator=g)
    return q, out, id_tokens, wk, wv


@pytest.mark.parametrize("num_zero", [0, 80])
def test_project_id_tokens_matches_reference(num_zero):
    _, _, tokens, wk, wv = make_inputs()
    id_k, id_v = project_id_tokens(tokens, wk.half(), wv.half(), num_zero)
    ref_k, ref_v = ref_project(tokens, wk.half().float(), wv.half().float(), num_zero)
    assert id_k.shape == (2, 10 + num_zero, 640) and id_k.dtype == torch.float32
    assert_close(id_k, ref_k)
    assert_close(id_v, ref_v)
    assert torch.all(id_k[:, 10:] == 0)
    half_k, _ = project_id_tokens(tokens, wk, wv, num_zero, dtype=torch.float16)
    assert half_k.dtype == torch.float16


@pytest.mark.parametrize("ortho", ["off", "v1", "v2"])
@pytest.mark.parametrize("num_zero,width", [(0, 640), (80, 1280)])
def test_id_attention_matches_reference(ortho, num_zero, width):
    q, out, tokens, wk, wv = make_inputs(width=width, num_zero=num_zero)
    heads = width // 64
    id_k, id_v = project_id_tokens(tokens, wk, wv, num_zero)
    got = id_attention(q, out, id_k, id_v, heads, 0.8, ortho)
    want = ref_id_attention(q, out, id_k, id_v, heads, 0.8, ortho)
    assert got.dtype == torch.float32 and got.shape == out.shape
    assert_close(got, want)


@pytest.mark.parametrize("ortho", ["off", "v1", "v2"])
def test_fp16_in_fp16_out(ortho):
    q, out, tokens, wk, wv = make_inputs(num_zero=8)
    id_k, id_v = project_id_tokens(tokens, wk, wv, 8, dtype=torch.float16)
    got = id_attention(q.half(), out.half(), id_k, id_v, 10, 1.0, ortho)
    assert got.dtype == torch.float16
    want = ref_id_attention(q.half(), out.half(), id_k, id_v, 10, 1.0, ortho)
    assert_close(got, want)


def test_single_id_batch_broadcasts_over_query_batch():
    q, out, tokens, wk, wv = make_inputs(b=3)
    id_k, id_v = project_id_tokens(tokens[:1], wk, wv, 4)
    got = id_attention(q, out, id_k, id_v, 10, 1.0, "v2")
    want = ref_id_attention(q, out, id_k.expand(3, -1, -1), id_v.expand(3, -1, -1), 10, 1.0, "v2")
    assert_close(got, want)


def test_presets_and_defaults():
    assert PRESETS["v1"] == {"fidelity": (8, "v2"), "style": (16, "v1"), "neutral": (0, "off")}
    assert PRESETS["v1.1"] == {"fidelity": (20, "v2"), "style": (40, "v1"), "neutral": (0, "off")}
    assert DEFAULT_WEIGHT == {"v1": 1.0, "v1.1": 0.8}
    assert resolve_preset("v1.1", "style") == (40, "v1")
    with pytest.raises(PulidError, match="fidelity"):
        resolve_preset("v1", "extreme")
    with pytest.raises(PulidError, match="ortho"):
        q, out, tokens, wk, wv = make_inputs()
        id_attention(q, out, *project_id_tokens(tokens, wk, wv, 0), 10, 1.0, "v3")


@pytest.mark.parametrize("ortho", ["off", "v1", "v2"])
@pytest.mark.parametrize("num_zero", [0, 1, 20])
@pytest.mark.parametrize("tokens_n", [32, 3])  # 3: fewer than the five tokens ortho v2 measures
def test_zero_tokens_as_a_count_equal_materialised_zero_tokens(ortho, num_zero, tokens_n):
    """The zero-token slot (logit bias log(num_zero)) gives what num_zero real zero tokens give."""
    q, out, tokens, wk, wv = make_inputs(width=1280, tokens=tokens_n)
    padded = project_id_tokens(tokens, wk, wv, num_zero)
    plain = project_id_tokens(tokens, wk, wv, 0)
    got = id_attention(q, out, *plain, 20, 0.8, ortho, num_zero=num_zero)
    want = ref_id_attention(q, out, *padded, 20, 0.8, ortho)
    assert_close(got, want)


@pytest.mark.parametrize("ortho", ["off", "v1", "v2"])
def test_mask_scales_the_identity_term_only(ortho):
    q, out, tokens, wk, wv = make_inputs(num_zero=8)
    id_k, id_v = project_id_tokens(tokens, wk, wv, 0)
    mask = torch.rand(2, q.shape[1], 1, generator=torch.Generator().manual_seed(3))
    mask[:, :8] = 0.0
    got = id_attention(q, out, id_k, id_v, 10, 1.2, ortho, num_zero=8, mask=mask)
    full = ref_id_attention(q, out, *project_id_tokens(tokens, wk, wv, 8), 10, 1.2, ortho)
    assert_close(got, out.double() + (full - out.double()) * mask.double())
    assert torch.equal(got[:, :8], out[:, :8])


def test_rows_grouped_by_id_tokens():
    """G sets of ID tokens for B = 2G query rows: rows 2g and 2g+1 attend to set g."""
    q, out, tokens, wk, wv = make_inputs(b=4)
    id_k, id_v = project_id_tokens(tokens[:2], wk, wv, 0)
    got = id_attention(q, out, id_k, id_v, 10, 1.0, "v2", num_zero=4)
    pk, pv = project_id_tokens(tokens[:2], wk, wv, 4)
    want = ref_id_attention(q, out, pk.repeat_interleave(2, 0), pv.repeat_interleave(2, 0), 10, 1.0, "v2")
    assert_close(got, want)


@pytest.mark.parametrize("ortho", ["v1", "v2"])
@pytest.mark.parametrize("masked", [False, True])
def test_zero_text_output_rows_get_plain_addition_not_nan(ortho, masked):
    """A zeroed negative prompt (ConditioningZeroOut) gives uncond rows whose text attention is all zero:
    there ortho has nothing to project on and reduces to out + w*id; the other rows are unchanged, bit for bit."""
    q, out, id_tokens, wk, wv = make_inputs(b=2)
    k, v = project_id_tokens(id_tokens, wk, wv, 8)
    mask = torch.rand(2, out.shape[1], 1, generator=torch.Generator().manual_seed(3)) if masked else None
    before = id_attention(q, out, k, v, 10, 0.8, ortho, mask=mask)
    zeroed = out.clone()
    zeroed[1] = 0.0
    got = id_attention(q, zeroed, k, v, 10, 0.8, ortho, mask=mask)
    assert torch.isfinite(got).all()
    assert torch.equal(got[0], before[0])
    plain = ref_id_attention(q, zeroed, k, v, 10, 0.8, "off")
    if mask is not None:
        plain = zeroed.double() + (plain - zeroed.double()) * mask.double()
    assert_close(got[1], plain[1])  # the projection p is 0 there
