"""The cross-attention replace that adds PuLID's identity term to an SDXL UNet.

ComfyUI calls an attn2 "replace" with the already projected text q/k/v and expects the attention
output back. `IdentityAttention` is that callable, kept free of host imports: the host hands in its
own attention function and the sigma window (from `percent_to_sigma`), so every rule below (sigma
window, cond/uncond routing, region mask, chaining, K/V cache) is testable on plain tensors.

The objects are treated as immutable once built. ComfyUI deep-copies `model_options` on every
`ModelPatcher.clone()` (both hosts we support do), so `__deepcopy__` returns a shallow copy: a clone
of a patched model shares the projection weights, the token embeddings and the K/V cache instead of
duplicating them.
"""
import copy
import logging
import math
import weakref

import torch
import torch.nn.functional as F

from .attention import id_attention, project_id_tokens
from .errors import EmbeddingMismatchError
from .sites import SITES

logger = logging.getLogger(__name__)

# ComfyUI's codes in extra_options["cond_or_uncond"].
COND = 0
UNCOND = 1


# Projected ID K/V shared between applies: {cond tokens: {K weight: {(device, dtype): (num_zero, kv)}}}.
# Moving the weight, method-independent sliders (start/end) or the mask re-patches the model; the
# new patch finds the projections of the previous one here instead of projecting 70 weight pairs
# again on its first step. Weak keys: an entry goes with its embeddings (and is found stale, then
# replaced, if its PuLID model goes first).
# One num_zero per device and dtype is kept, so switching methods back and forth cannot pile up copies.
class _WeakIdentityMap:
    """{object: value} by identity, never keeping a key object alive.

    weakref.WeakKeyDictionary compares keys with ==, which tensors answer elementwise. With
    `drop_dead`, an entry goes when its key object is collected. The finalizer that does this lives
    as long as the key and holds this map, so it is only for maps that are long-lived themselves:
    a map held inside another entry must not register one on a long-lived key (a K weight), or
    the finalizer would keep the map, and the K/V in it, alive as long as the PuLID model.
    Without it, a dead key's entry is found stale by its weak reference and replaced.
    """

    def __init__(self, drop_dead=True):
        self.drop_dead = drop_dead
        self._entries = {}

    def setdefault(self, obj, factory):
        entry = self._entries.get(id(obj))
        if entry is None or entry[0]() is not obj:
            entry = (weakref.ref(obj), factory())
            self._entries[id(obj)] = entry
            if self.drop_dead:
                weakref.finalize(obj, self._entries.pop, id(obj), None)
        return entry[1]


_SHARED_KV = _WeakIdentityMap()


class IDKeyValueGroup:
    """The identity tokens of every site of one apply, projected to K/V together, once per device and dtype.

    The first site that needs its K/V projects all of them: cond and uncond tokens go through each
    weight pair as one batch, and fp16/bf16 weights are widened into a single float32 scratch buffer
    that is dropped right after, so a first step allocates one buffer, not 140 large temporaries
    (which the CPU allocator would keep resident). The projection weights stay where the checkpoint
    put them (normally CPU), so the 70 weight pairs never occupy VRAM while sampling. Only the
    results ([T + num_zero, width] per site and row kind) are kept, shared by every patch made from
    the same embeddings and PuLID model (see `_SHARED_KV`).
    """

    def __init__(self, cond, uncond, weights, num_zero):
        self.cond = cond
        self.uncond = uncond
        self.weights = list(weights)
        self.num_zero = num_zero
        self._cache = {}

    def get(self, device, dtype):
        """Per site (cond_k, cond_v, uncond_k, uncond_v), each [1, T + num_zero, width]."""
        key = (str(device), dtype)
        cached = self._cache.get(key)
        if cached is None:
            per_weight = _SHARED_KV.setdefault(self.cond, lambda: _WeakIdentityMap(drop_dead=False))
            shared = per_weight.setdefault(self.weights[0][0], dict)
            num_zero, cached = shared.get(key, (None, None))
            if num_zero != self.num_zero:
                cached = self._project(device, dtype)
                shared[key] = (self.num_zero, cached)
            self._cache[key] = cached
        return cached

    def _project(self, device, dtype):
        tokens = torch.cat([self.cond, self.uncond]).to(device=device, dtype=torch.float32)
        weights = [w for pair in self.weights for w in pair]
        scratch = None
        if any(w.dtype != torch.float32 or w.device != tokens.device for w in weights):
            scratch = torch.empty(max(w.numel() for w in weights), dtype=torch.float32, device=device)
        sites = []
        for k_weight, v_weight in self.weights:
            id_k, id_v = project_id_tokens(tokens, k_weight, v_weight, self.num_zero, dtype=dtype, scratch=scratch)
            sites.append((id_k[:1], id_v[:1], id_k[1:], id_v[1:]))
        return sites

    def __deepcopy__(self, memo):
        return self


class IDKeyValues:
    """One site's view of an `IDKeyValueGroup` (a group of its own when none is given)."""

    def __init__(self, cond, uncond, k_weight, v_weight, num_zero, group=None, index=0):
        self.cond = cond
        self.uncond = uncond
        self.k_weight = k_weight
        self.v_weight = v_weight
        self.group = group or IDKeyValueGroup(cond, uncond, [(k_weight, v_weight)], num_zero)
        self.index = index

    def get(self, device, dtype):
        """(cond_k, cond_v, uncond_k, uncond_v), each [1, T + num_zero, width]."""
        return self.group.get(device, dtype)[self.index]

    def __deepcopy__(self, memo):
        return self


def token_grid(latent_hw, tokens):
    """(h, w) of the token grid a site with `tokens` tokens sees for a latent of `latent_hw`.

    SDXL downsamples with stride-2 convolutions (padding 1), so each level is ceil(previous / 2);
    the up path is resized to match the skip connections, so the same grids occur on the way up.
    Odd latent sizes (e.g. 1000 px -> 125 latent -> 63 -> 32) are why the grid is searched rather
    than computed from a square-root ratio.
    """
    h, w = int(latent_hw[0]), int(latent_hw[1])
    for _ in range(8):
        if h * w == tokens:
            return h, w
        if h * w < tokens:
            break
        h, w = math.ceil(h / 2), math.ceil(w / 2)
    # Not a UNet level we know (another architecture or a host that pads): keep the aspect ratio.
    scale = math.sqrt(latent_hw[0] * latent_hw[1] / tokens)
    h = max(1, round(latent_hw[0] / scale))
    for cand in sorted(range(1, tokens + 1), key=lambda c: abs(c - h)):
        if tokens % cand == 0:
            return cand, tokens // cand
    return 1, tokens


class RegionMask:
    """An attention mask (ComfyUI MASK, [H, W] or [B, H, W], 1 = identity here) resized per site.

    One instance is shared by all 70 sites of an apply; resized copies are cached per grid and
    device, so each resolution is resized once per run, not once per step.
    """

    def __init__(self, mask):
        mask = torch.as_tensor(mask, dtype=torch.float32)
        if mask.ndim == 2:
            mask = mask[None]
        if mask.ndim != 3:
            raise ValueError(f"attn_mask must be [H, W] or [B, H, W], got shape {tuple(mask.shape)}")
        self.mask = mask.detach().cpu()
        self._cache = {}

    def rows(self, latent_hw, tokens, rows_per_chunk, chunks, device, dtype):
        """[chunks * rows_per_chunk, tokens, 1]: mask image i % B for the i-th image of each chunk."""
        h, w = token_grid(latent_hw, tokens)
        key = (h, w, str(device), dtype)
        grid = self._cache.get(key)
        if grid is None:
            grid = F.interpolate(self.mask[:, None], size=(h, w), mode="bilinear", align_corners=False)
            grid = grid.reshape(grid.shape[0], h * w, 1).to(device=device, dtype=dtype)
            self._cache[key] = grid
        index = torch.arange(rows_per_chunk, device=device) % grid.shape[0]
        return grid[index].repeat(chunks, 1, 1)

    def __deepcopy__(self, memo):
        return self


_LAST_SIGMAS = [None, 0.0]  # the sigmas tensor of the step being sampled, and its value


def current_sigma(sigmas):
    """The step's sigma as a float, read from the tensor once per step, not once per site.

    ComfyUI hands every site of one UNet call the same `sigmas` tensor, which lives on the sampling
    device: reading it is a device sync, so 70 reads per step would stall a GPU 70 times.
    """
    if sigmas is not _LAST_SIGMAS[0]:
        _LAST_SIGMAS[:] = [sigmas, float(torch.as_tensor(sigmas).reshape(-1)[0])]
    return _LAST_SIGMAS[1]


class IdentityAttention:
    """attn2 replace for one site: text attention (or the replace that was there) + identity term.

    attention: the host's attention function, called as
      attention(q, k, v, heads, attn_precision=..., transformer_options=extra_options).
    sigma_start/sigma_end: the identity term is added only while sigma_end <= sigma <= sigma_start.
    previous: a replace already registered at this site (IP-Adapter, InstantID, another PuLID);
      it produces the text attention output and ours is added on top, so patches compose.
    """

    def __init__(self, kv, heads, weight, ortho, sigma_start, sigma_end, attention,
                 mask=None, previous=None):
        self.kv = kv
        self.heads = heads
        self.weight = float(weight)
        self.ortho = ortho
        self.sigma_start = float(sigma_start)
        self.sigma_end = float(sigma_end)
        self.attention = attention
        self.mask = mask
        self.previous = previous

    def __deepcopy__(self, memo):
        return copy.copy(self)

    def active(self, extra_options):
        if self.weight == 0:
            return False
        sigmas = extra_options.get("sigmas")
        if sigmas is None:
            return True
        return self.sigma_end <= current_sigma(sigmas) <= self.sigma_start

    def text_attention(self, q, k, v, extra_options):
        if self.previous is not None:
            return self.previous(q, k, v, extra_options)
        return self.attention(q, k, v, extra_options.get("n_heads", self.heads),
                              attn_precision=extra_options.get("attn_precision"), transformer_options=extra_options)

    def __call__(self, q, k, v, extra_options):
        out = self.text_attention(q, k, v, extra_options)
        if not self.active(extra_options):
            return out
        chunks = list(extra_options.get("cond_or_uncond") or [COND])
        if q.shape[0] % len(chunks):
            raise ValueError(f"batch of {q.shape[0]} rows does not split into cond_or_uncond {chunks}")
        rows = q.shape[0] // len(chunks)
        cond_k, cond_v, uncond_k, uncond_v = self.kv.get(q.device, q.dtype)
        id_k = torch.cat([(uncond_k if c == UNCOND else cond_k).expand(rows, -1, -1) for c in chunks])
        id_v = torch.cat([(uncond_v if c == UNCOND else cond_v).expand(rows, -1, -1) for c in chunks])
        heads = extra_options.get("n_heads", self.heads)
        result = id_attention(q, out, id_k, id_v, heads, self.weight, self.ortho)
        if self.mask is None:
            return result
        latent_hw = extra_options["original_shape"][-2:]
        mask = self.mask.rows(latent_hw, q.shape[1], rows, len(chunks), q.device, result.dtype)
        # Every ortho mode is `out + weight * term`, so masking the difference masks the ID term only.
        return out + (result - out) * mask


def check_embedding(model, embeds):
    """Raise EmbeddingMismatchError unless `embeds` was made by a model of the same version."""
    if embeds.version != model.version:
        raise EmbeddingMismatchError(
            f"These face embeddings were made with a PuLID {embeds.version} model but are applied with "
            f"PuLID {model.version} ({model.path}). Encode the face again with the {model.version} "
            f"model, or load the {embeds.version} model in the Apply node.")
    if embeds.cond.shape[-1] != model.kv_weights[0][0].shape[1]:
        raise EmbeddingMismatchError(
            f"Face embeddings have {embeds.cond.shape[-1]} features per token but the PuLID model "
            f"{model.path} expects {model.kv_weights[0][0].shape[1]}; encode the face again.")


def build_patches(model, embeds, *, weight, num_zero, ortho, sigma_start, sigma_end, attention,
                  mask=None, existing=None):
    """{site key: IdentityAttention} for all 70 SDXL cross-attention sites.

    existing: the attn2 replaces already on the model (key -> callable); each is chained, not lost.
    """
    check_embedding(model, embeds)
    existing = existing or {}
    region = None if mask is None else RegionMask(mask)
    patches = {}
    group = IDKeyValueGroup(embeds.cond, embeds.uncond, model.kv_weights, num_zero)
    for index, (site, (k_weight, v_weight)) in enumerate(zip(SITES, model.kv_weights)):
        kv = IDKeyValues(embeds.cond, embeds.uncond, k_weight, v_weight, num_zero, group, index)
        patches[site.key] = IdentityAttention(
            kv, site.heads, weight, ortho, sigma_start, sigma_end, attention,
            mask=region, previous=existing.get(site.key))
    return patches
