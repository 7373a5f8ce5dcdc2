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
import math
import weakref

import torch
import torch.nn.functional as F

from .attention import IDHeads, attend, compute_dtype, head_layout, project_id_tokens
from .errors import EmbeddingMismatchError
from .sites import SITES

# ComfyUI's codes in extra_options["cond_or_uncond"].
COND = 0
UNCOND = 1


# Projected ID K/V shared between applies: {cond tokens: {K weight: {(device, dtype): per-site layouts}}}.
# Moving the weight, the method (num_zero, ortho), start/end or the mask re-patches the model; the new
# patch finds the projections of the previous one here instead of projecting 70 weight pairs again
# on its first step (the zero tokens are a count, not part of the projection). Weak keys: an entry
# goes with its embeddings (and is found stale, then replaced, if its PuLID model goes first).
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

STORE_ORDER = (UNCOND, COND)
"""Row kinds in the order a site's projected K/V are stored: ComfyUI batches uncond before cond, so
the usual layouts (uncond+cond, cond alone, uncond alone) are views of the store."""


class IDKeyValueGroup:
    """The identity tokens of every site of one apply, projected to K/V together, once per device and dtype.

    The first site that needs its K/V projects all of them: cond and uncond tokens go through each
    weight pair as one batch, and fp16/bf16 weights are widened into a single float32 scratch buffer
    that is dropped right after, so a first step allocates one buffer, not 140 large temporaries
    (which the CPU allocator would keep resident). The projection weights stay where the checkpoint
    put them (normally CPU), so the 70 weight pairs never occupy VRAM while sampling. Only the
    results are kept, in `head_layout` (uncond then cond, [2*heads, T+1, .] per site), shared by every
    patch made from the same embeddings and PuLID model (see `_SHARED_KV`).
    """

    def __init__(self, cond, uncond, weights, heads):
        self.cond = cond
        self.uncond = uncond
        self.weights = list(weights)
        self.heads = list(heads)
        self._cache = {}

    def get(self, device, dtype):
        """Per site (keys, values) in `head_layout`, groups in STORE_ORDER."""
        key = (str(device), dtype)
        cached = self._cache.get(key)
        if cached is None:
            per_weight = _SHARED_KV.setdefault(self.cond, lambda: _WeakIdentityMap(drop_dead=False))
            shared = per_weight.setdefault(self.weights[0][0], dict)
            cached = shared.get(key)
            if cached is None:
                cached = shared[key] = self._project(device, dtype)
            self._cache[key] = cached
        return cached

    def _project(self, device, dtype):
        rows = {COND: self.cond, UNCOND: self.uncond}
        tokens = torch.cat([rows[kind] for kind in STORE_ORDER]).to(device=device, dtype=torch.float32)
        weights = [w for pair in self.weights for w in pair]
        scratch = None
        if any(w.dtype != torch.float32 or w.device != tokens.device for w in weights):
            scratch = torch.empty(max(w.numel() for w in weights), dtype=torch.float32, device=device)
        sites = []
        for (k_weight, v_weight), heads in zip(self.weights, self.heads):
            id_k, id_v = project_id_tokens(tokens, k_weight, v_weight, 0, dtype=dtype, scratch=scratch)
            sites.append(head_layout(id_k, id_v, heads, dtype))
        return sites

    def __deepcopy__(self, memo):
        return self


class IDKeyValues:
    """One site's ID keys/values in an apply: its part of an `IDKeyValueGroup` (a group of its own when
    none is given) arranged for each row layout the sampler uses, with the zero-token bias."""

    def __init__(self, cond, uncond, k_weight, v_weight, heads, num_zero, group=None, index=0):
        self.cond = cond
        self.uncond = uncond
        self.k_weight = k_weight
        self.v_weight = v_weight
        self.heads = heads
        self.num_zero = num_zero
        self.group = group or IDKeyValueGroup(cond, uncond, [(k_weight, v_weight)], [heads])
        self.index = index
        self._layouts = {}

    def layout(self, chunks, device, dtype):
        """`IDHeads` for query rows in `chunks` blocks (ComfyUI's cond_or_uncond codes).

        Made once per row layout: a run of STORE_ORDER is a view of the shared store, any other
        order a copy kept here.
        """
        key = (chunks, str(device), dtype)
        cached = self._layouts.get(key)
        if cached is None:
            keys, values = self.group.get(device, dtype)[self.index]
            first = STORE_ORDER.index(chunks[0])
            if chunks == STORE_ORDER[first:first + len(chunks)]:
                rows = slice(first * self.heads, (first + len(chunks)) * self.heads)
                keys, values = keys[rows], values[rows]
            else:
                rows = torch.cat([torch.arange(self.heads) + STORE_ORDER.index(c) * self.heads for c in chunks])
                rows = rows.to(keys.device)
                keys, values = keys.index_select(0, rows), values.index_select(0, rows)
            cached = self._layouts[key] = IDHeads(keys, values, self.num_zero)
        return cached

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

    One instance is shared by all 70 sites of an apply; resized copies are cached per grid, batch
    layout and device, so each resolution is resized once per run, not once per step.
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
        """[chunks * rows_per_chunk, tokens, 1]: mask image i % B for the i-th image of each chunk.

        Cached per call shape, since every step asks again for the same few.
        """
        key = (tuple(latent_hw), tokens, rows_per_chunk, chunks, str(device), dtype)
        rows = self._cache.get(key)
        if rows is None:
            h, w = token_grid(latent_hw, tokens)
            grid = F.interpolate(self.mask[:, None], size=(h, w), mode="bilinear", align_corners=False)
            grid = grid.reshape(grid.shape[0], h * w, 1).to(device=device, dtype=dtype)
            index = torch.arange(rows_per_chunk, device=device) % grid.shape[0]
            rows = self._cache[key] = grid[index].repeat(chunks, 1, 1)
        return rows

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

    def __init__(self, kv, weight, ortho, sigma_start, sigma_end, attention, mask=None, previous=None):
        self.kv = kv
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
        return self.attention(q, k, v, extra_options.get("n_heads", self.kv.heads),
                              attn_precision=extra_options.get("attn_precision"), transformer_options=extra_options)

    def __call__(self, q, k, v, extra_options):
        out = self.text_attention(q, k, v, extra_options)
        if not self.active(extra_options):
            return out
        return self.identity_term(q, out, extra_options)

    def identity_term(self, q, out, extra_options):
        """`out` with this site's identity term added: cond rows see cond tokens, uncond rows uncond."""
        chunks = tuple(extra_options.get("cond_or_uncond") or (COND,))
        if q.shape[0] % len(chunks):
            raise ValueError(f"batch of {q.shape[0]} rows does not split into cond_or_uncond {list(chunks)}")
        dtype = compute_dtype(q.dtype, self.ortho)
        id_heads = self.kv.layout(chunks, q.device, dtype)
        mask = None
        if self.mask is not None:
            mask = self.mask.rows(extra_options["original_shape"][-2:], q.shape[1], q.shape[0] // len(chunks),
                                  len(chunks), q.device, dtype)
        return attend(q, out, id_heads, self.weight, self.ortho, mask)


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
    group = IDKeyValueGroup(embeds.cond, embeds.uncond, model.kv_weights, [site.heads for site in SITES])
    for index, (site, (k_weight, v_weight)) in enumerate(zip(SITES, model.kv_weights)):
        kv = IDKeyValues(embeds.cond, embeds.uncond, k_weight, v_weight, site.heads, num_zero, group, index)
        patches[site.key] = IdentityAttention(
            kv, weight, ortho, sigma_start, sigma_end, attention, mask=region, previous=existing.get(site.key))
    return patches
