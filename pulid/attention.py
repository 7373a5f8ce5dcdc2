"""The ID branch PuLID adds to every SDXL cross-attention layer, and its presets.

At each site the query of the image tokens also attends to the ID tokens (projected by that site's K/V
weights); the result is added to the text attention output, either plainly or with part of it removed
along the text output ("ortho"), which is what keeps the prompt in control of style. This runs 70 times
per UNet step, so it allocates only what the chosen mode needs.
"""
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
    cast to `dtype` (the query dtype; default: the tokens' dtype). Zero tokens project to zero keys and
    values, so they only dilute the attention: more zeros = weaker ID, more room for the prompt.
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


def _split_heads(x, heads):
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


def id_attention(q, out, id_k, id_v, heads, weight, ortho="off"):
    """`out` plus the weighted ID attention of query `q`; the result has `out`'s dtype.

    q, out: [B,N,C] (query after to_q; text attention output before to_out). id_k, id_v: [B or 1,T',C]
    from `project_id_tokens`. ortho:
      "off": out + w*id
      "v1":  out + w*(id - p), p = projection of id onto out (sums over the sequence, per sample and
             channel), in float32
      "v2":  out + w*(id + (s - 1)*p), s = share of the head-averaged, unscaled attention that lands on
             the first five ID tokens, in float32
    """
    if ortho not in ORTHO_MODES:
        raise PulidError(f"Unknown ortho mode {ortho!r}: choose one of {', '.join(ORTHO_MODES)}.")
    b, n, c = q.shape
    if c % heads:
        raise ValueError(f"query width {c} is not divisible by {heads} heads")
    id_k = id_k.to(q.dtype).expand(b, -1, -1)
    id_v = id_v.to(q.dtype).expand(b, -1, -1)
    qh, kh, vh = _split_heads(q, heads), _split_heads(id_k, heads), _split_heads(id_v, heads)
    id_out = F.scaled_dot_product_attention(qh, kh, vh).transpose(1, 2).reshape(b, n, c)

    if ortho == "off":
        return (out + weight * id_out.to(out.dtype)).to(out.dtype)

    out32 = out.float()
    id32 = id_out.float()
    projection = (out32 * id32).sum(dim=-2, keepdim=True) / (out32 * out32).sum(dim=-2, keepdim=True) * out32
    if ortho == "v1":
        return (out32 + weight * (id32 - projection)).to(out.dtype)

    # The map is [B,heads,N,T'], made only in this mode. Float32 even for fp16 inputs: the logits are
    # unscaled and could overflow fp16 (the official code computes them in the query dtype).
    probs = torch.softmax(qh.float() @ kh.float().transpose(-2, -1), dim=-1)
    share = probs.mean(dim=1)[..., :NUM_ID_DOMINANT_TOKENS].sum(dim=-1, keepdim=True)
    return (out32 + weight * (id32 + (share - 1) * projection)).to(out.dtype)
