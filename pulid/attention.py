"""The ID branch PuLID adds to every SDXL cross-attention layer, and its presets.

At each site the query of the image tokens also attends to the ID tokens (projected by that site's K/V
weights); the result is added to the text attention output, either plainly or with part of it removed
along the text output ("ortho"), which is what keeps the prompt in control of style.

This runs 70 times per UNet step, so it is written for its cost, with the official math unchanged:
- The `num_zero` zero tokens are not materialised. Their keys and values are zero, so each has logit 0
  and adds nothing to the output; together they weigh `num_zero * exp(0)` in the softmax, which one
  extra zero key with a logit bias of log(num_zero) gives exactly. v1.1 (32 tokens + 20 zeros) then
  multiplies 33 keys per query instead of 52.
- Keys and values are laid out per head once (`head_layout`); the query rows that share ID tokens are
  one group of a batched matmul, so no per-row copy of the keys is made.
- Ortho v2's share map and the attention use the same q.k product (unscaled and scaled).
- The weight is folded into the attention output's matmul, and the ortho modes work in place on that
  output with one scratch buffer (each new [B, N, C] temporary is a cache miss inside a UNet step).
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .errors import PulidError

ORTHO_MODES = ("off", "v1", "v2")

PRESETS = {
    # Official v1 demo (app.py): fidelity / extremely style.
    "v1": {"fidelity": (8, "v2"), "style": (16, "v1"), "neutral": (0, "off")},
    # v1.1 demo defaults are 20 zero tokens + ortho v2; style doubles the zero tokens with ortho v1.
    "v1.1": {"fidelity": (20, "v2"), "style": (40, "v1"), "neutral": (0, "off")},
}
"""version -> method -> (num_zero, ortho)."""

DEFAULT_WEIGHT = {"v1": 1.0, "v1.1": 0.8}
"""ID weight of the official demos per version."""

FLOAT32_TINY = torch.finfo(torch.float32).tiny
"""Smallest normal float32: the floor of ortho's denominator (see `attend`)."""

NUM_ID_DOMINANT_TOKENS = 5
"""Ortho v2 measures how much attention goes to the first five ID tokens (the face-embedding tokens)."""


def resolve_preset(version, method):
    """(num_zero, ortho) for a preset name such as "fidelity"; a clear PulidError for unknown names."""
    if version not in PRESETS:
        raise PulidError(f"Unknown PuLID version {version!r}: expected one of {', '.join(PRESETS)}.")
    methods = PRESETS[version]
    if method not in methods:
        raise PulidError(f"Unknown PuLID method {method!r}: choose one of {', '.join(methods)}.")
    return methods[method]


def project_id_tokens(tokens, k_weight, v_weight, num_zero, dtype=None, scratch=None):
    """ID keys/values for one site: `num_zero` zero tokens are appended, then both bias-free projections.

    tokens [B,T,2048] -> (id_k, id_v) [B,T+num_zero,width]. The product runs in float32 whatever the
    weights' storage dtype (the official pipelines keep these projections in float32 modules) and is
    cast to `dtype` (default: the tokens' dtype). Zero tokens project to zero keys and values, so they
    only dilute the attention: more zeros = weaker ID, more room for the prompt. (`id_attention` can
    take them as a count instead: `num_zero=0` here and there.)
    scratch: optional flat float32 tensor on the tokens' device, at least width*2048 long, that receives
    the float32 copy of each weight. Projecting 70 sites then allocates no 10 MB temporary per weight,
    which the CPU allocator would otherwise keep as resident memory long after.
    """
    out_dtype = dtype or tokens.dtype
    x = tokens.float()
    if num_zero > 0:
        x = torch.cat([x, x.new_zeros(x.shape[0], num_zero, x.shape[2])], dim=1)
    id_k = F.linear(x, _float32(k_weight, x.device, scratch))
    id_v = F.linear(x, _float32(v_weight, x.device, scratch))
    return id_k.to(out_dtype), id_v.to(out_dtype)


def _float32(weight, device, scratch):
    if scratch is None or (weight.dtype == torch.float32 and weight.device == device):
        return weight.to(device=device, dtype=torch.float32)
    return scratch[:weight.numel()].view(weight.shape).copy_(weight)


def compute_dtype(query_dtype, ortho):
    """The dtype the identity term is computed in: float32 for ortho v1/v2 (the official code runs the
    projection in float32; v2's unscaled logits could overflow fp16), the query's dtype otherwise."""
    return query_dtype if ortho == "off" else torch.float32


def head_layout(id_k, id_v, heads, dtype):
    """ID keys/values [G,T,C] laid out for the batched head matmuls, with the slot for the zero tokens.

    Returns keys and values, each [G*heads, T+1, C/heads]; the last key and value are zero and stand
    for all `num_zero` zero tokens (see `IDHeads`).
    """
    groups, tokens, width = id_k.shape
    if width % heads:
        raise ValueError(f"ID key width {width} is not divisible by {heads} heads")
    dim = width // heads

    def split(x):
        heads_first = x.new_zeros((groups, heads, tokens + 1, dim), dtype=dtype)
        heads_first[:, :, :tokens] = x.view(groups, tokens, heads, dim).transpose(1, 2)
        return heads_first.view(groups * heads, tokens + 1, dim)

    return split(id_k), split(id_v)


def project_sites(tokens, kv_weights, heads, device, dtype):
    """Every site's ID keys/values in `head_layout`: [(keys, values)] in the order of `kv_weights`.

    tokens [G,T,2048] (e.g. uncond and cond stacked) go through each weight pair as one batch. fp16/bf16
    weights are widened into a single float32 scratch buffer dropped right after, so projecting all
    sites allocates one buffer, not 140 large temporaries (which the CPU allocator would keep resident).
    The weights stay where the checkpoint put them (normally CPU): they never occupy VRAM while sampling.
    """
    tokens = tokens.to(device=device, dtype=torch.float32)
    flat = [w for pair in kv_weights for w in pair]
    scratch = None
    if any(w.dtype != torch.float32 or w.device != tokens.device for w in flat):
        scratch = torch.empty(max(w.numel() for w in flat), dtype=torch.float32, device=device)
    sites = []
    for (k_weight, v_weight), site_heads in zip(kv_weights, heads):
        id_k, id_v = project_id_tokens(tokens, k_weight, v_weight, 0, dtype=dtype, scratch=scratch)
        sites.append(head_layout(id_k, id_v, site_heads, dtype))
    return sites


@dataclass
class IDHeads:
    """One site's ID keys/values in `head_layout`, standing for `num_zero` zero tokens beyond their own.

    bias [T+1, 1] is added to the logits: 0 for the ID tokens, log(num_zero) for the zero slot. The
    slot's logit is q.0 = 0, so its softmax weight is exp(log(num_zero)) = num_zero * exp(0), the same
    as num_zero zero tokens; without zero tokens its bias is -inf and its weight exactly 0.
    """

    keys: torch.Tensor
    values: torch.Tensor
    num_zero: int
    bias: torch.Tensor = field(init=False)

    def __post_init__(self):
        self.bias = self.keys.new_zeros(self.keys.shape[1], 1)
        self.bias[-1] = math.log(self.num_zero) if self.num_zero > 0 else -math.inf

    def dominant_share(self, probs):
        """Share of attention `probs` [., T+1, M] on the first five tokens of [ID tokens; zero tokens]."""
        real = min(NUM_ID_DOMINANT_TOKENS, probs.shape[1] - 1)
        share = probs[:, :real].sum(dim=1)
        zeros = min(NUM_ID_DOMINANT_TOKENS - real, self.num_zero)
        if zeros:  # fewer than five ID tokens: the first zero tokens count too, each 1/num_zero of the slot
            share = share + probs[:, -1] * (zeros / self.num_zero)
        return share


def id_attention(q, out, id_k, id_v, heads, weight, ortho="off", num_zero=0, mask=None):
    """`out` plus the weighted ID attention of query `q`; the result has `out`'s dtype.

    q, out: [B,N,C] (query after to_q; text attention output before to_out). id_k, id_v: [G,T,C] from
    `project_id_tokens`, G dividing B: consecutive blocks of B/G query rows share one set of ID tokens
    (G = 1: all rows). num_zero: zero tokens the keys/values stand for beyond those they hold.
    mask: optional [B,N,1] factor on the identity term (the text output is kept where it is 0).
    ortho:
      "off": out + w*id
      "v1":  out + w*(id - p), p = projection of id onto out (sums over the sequence, per sample and
             channel; 0 where out is all zero), in float32
      "v2":  out + w*(id + (s - 1)*p), s = share of the head-averaged, unscaled attention that lands on
             the first five ID tokens, in float32
    """
    if ortho not in ORTHO_MODES:
        raise PulidError(f"Unknown ortho mode {ortho!r}: choose one of {', '.join(ORTHO_MODES)}.")
    if q.shape[-1] % heads:
        raise ValueError(f"query width {q.shape[-1]} is not divisible by {heads} heads")
    keys, values = head_layout(id_k, id_v, heads, compute_dtype(q.dtype, ortho))
    return attend(q, out, IDHeads(keys, values, num_zero), weight, ortho, mask)


def attend(q, out, id_heads, weight, ortho, mask=None, base=None):
    """`id_attention` on an `IDHeads` (in `compute_dtype`).

    base: what the identity term is added to, default `out`. Ortho always projects against `out`;
    several identities at one site pass the same text output as `out` and the running sum as `base`.

    The logits are computed token-major, [groups*heads, T+1, rows]: the softmax then reduces over a
    strided dimension of 11 to 53 entries while its vector loops run along the rows, several times
    faster on CPU than a softmax over a short last dimension (measured on CPU only).
    """
    keys, values, bias = id_heads.keys, id_heads.values, id_heads.bias
    batch, tokens, width = q.shape
    group_heads, _, dim = keys.shape
    heads = width // dim
    groups = group_heads // heads
    if batch % groups:
        raise ValueError(f"batch of {batch} rows does not split into {groups} groups of ID tokens")
    rows = batch // groups * tokens
    # One copy of q into [groups*heads, rows, dim] (cast included), the layout bmm needs.
    qh = q.new_empty((groups, heads, rows, dim), dtype=keys.dtype)
    qh.copy_(q.reshape(groups, rows, heads, dim).transpose(1, 2))
    qh = qh.view(group_heads, rows, dim).mT
    scale = dim ** -0.5
    if ortho == "v2":
        logits = torch.bmm(keys, qh)
        probs = logits + bias
        share = id_heads.dominant_share(torch.softmax(probs, dim=1, out=probs))
        share = share.view(groups, heads, rows).mean(dim=1).view(batch, tokens, 1)
        logits = logits.mul_(scale).add_(bias)
    else:
        logits = torch.baddbmm(bias, keys, qh, alpha=scale)
    # weight * attention output, the weight applied inside the matmul (beta=0: the input is ignored);
    # softmaxes overwrite their input, one [groups*heads, T+1, rows] buffer fewer each.
    probs = torch.softmax(logits, dim=1, out=logits).mT
    wid = torch.baddbmm(probs.new_zeros(()), probs, values, beta=0, alpha=weight)
    wid = wid.view(groups, heads, rows, dim).transpose(1, 2).reshape(batch, tokens, width)

    # From here every step works in place on `wid` (a fresh tensor) where it can: on CPU each new
    # [B, N, C] temporary costs page faults, not just a pass.
    if ortho == "off":
        wid = wid.to(out.dtype)
        base = out if base is None else base
        if mask is None:
            return wid.add_(base)
        return torch.addcmul(base, wid, mask.to(out.dtype))

    out32 = out.float()
    # w*p = c*out with c = <out, w*id> / <out, out> per sample and channel (sums over the sequence);
    # one scratch tensor serves both products and v2's c*out.
    scratch = torch.mul(out32, wid)
    num = scratch.sum(dim=-2, keepdim=True)
    den = torch.mul(out32, out32, out=scratch).sum(dim=-2, keepdim=True)
    # Where the text output is all zero (a ConditioningZeroOut negative) there is nothing to project on and
    # the numerator is 0 too: a floor on the denominator makes the projection 0 there, not 0/0, and ortho
    # reduces to plain addition. Any real denominator is far above the floor, so elsewhere nothing changes.
    coef = num.div_(den.clamp_min_(FLOAT32_TINY))
    # Every mode is out + w*id + f*out with f = -c (v1), (s - 1)*c (v2); masked, only the identity
    # term w*id + f*out is scaled by the mask. Unmasked onto `out` itself, the + out is folded in.
    fold = mask is None and base is None
    if ortho == "v1":
        term = wid.addcmul_(out32, (1.0 if fold else 0.0) - coef)
    else:
        term = wid.addcmul_(torch.mul(out32, coef, out=scratch), share - 1)
        if fold:
            term.add_(out32)
    if fold:
        return term.to(out.dtype)
    target = out32 if base is None else base.float()
    if mask is None:
        return term.add_(target).to(out.dtype)
    return torch.addcmul(target, term, mask.float()).to(out.dtype)
