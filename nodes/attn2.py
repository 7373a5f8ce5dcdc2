"""ComfyUI's cross-attention ("attn2") replace that adds PuLID's identity term to an SDXL UNet.

ComfyUI calls an attn2 replace with the already projected text q/k/v and expects the attention
output back; `extra_options` says which rows are cond or uncond (`cond_or_uncond`), the latent size
(`original_shape`) and the step's `sigmas`. `IdentityAttention` is that callable. It imports nothing
from ComfyUI: patch.py hands in ComfyUI's attention function and the sigma window, so every rule below
(sigma window, cond/uncond routing, region mask, chaining, K/V layouts) is testable on plain tensors.

The objects are treated as immutable once built. ComfyUI deep-copies `model_options` on every
`ModelPatcher.clone()` (the hosts we support do), so `__deepcopy__` returns a shallow copy: a clone
of a patched model shares the projection weights, the token embeddings and their K/V instead of
duplicating them.
"""
import copy
import math

import torch
import torch.nn.functional as F

from ..pulid.attention import IDHeads, attend, compute_dtype
from ..pulid.embedding import check_embedding
from ..pulid.sites import SITES

# ComfyUI's codes in extra_options["cond_or_uncond"].
COND = 0
UNCOND = 1

STORE_ORDER = (UNCOND, COND)
"""Row kinds in the order `IDEmbedding.site_keys_values` stacks them (uncond, cond): ComfyUI batches
uncond before cond, so the usual layouts (uncond+cond, cond alone, uncond alone) are views of it."""

COMFYUI_BLOCKS = {
    "down_blocks.1.attentions.0": ("input", 4),
    "down_blocks.1.attentions.1": ("input", 5),
    "down_blocks.2.attentions.0": ("input", 7),
    "down_blocks.2.attentions.1": ("input", 8),
    "up_blocks.0.attentions.0": ("output", 0),
    "up_blocks.0.attentions.1": ("output", 1),
    "up_blocks.0.attentions.2": ("output", 2),
    "up_blocks.1.attentions.0": ("output", 3),
    "up_blocks.1.attentions.1": ("output", 4),
    "up_blocks.1.attentions.2": ("output", 5),
    "mid_block.attentions.0": ("middle", 0),
}
"""diffusers attention module -> ComfyUI's (block kind, block id); the middle block's id is 0."""


def site_key(site):
    """ComfyUI's attn2 patch key of a site: (block kind, block id, transformer index), e.g. ("input", 4, 0)."""
    return (*COMFYUI_BLOCKS[site.block], site.layer)


SITE_KEYS = tuple(site_key(site) for site in SITES)
"""The 70 patch keys, in checkpoint order."""


class IDKeyValues:
    """One site's ID keys/values in an apply, arranged for each row layout the sampler uses.

    The projection itself is kept on the embeddings (`IDEmbedding.site_keys_values`), shared by every
    site and every patch made from them; this adds the zero-token count and the row order.
    """

    def __init__(self, embeds, model, index, num_zero):
        self.embeds = embeds
        self.model = model
        self.index = index
        self.heads = SITES[index].heads
        self.num_zero = num_zero
        self._layouts = {}

    def layout(self, chunks, device, dtype):
        """`IDHeads` for query rows in `chunks` blocks (ComfyUI's cond_or_uncond codes).

        Made once per row layout: a run of STORE_ORDER is a view of the shared store, any other
        order a copy kept here.
        """
        key = (chunks, str(device), dtype)
        cached = self._layouts.get(key)
        if cached is None:
            keys, values = self.embeds.site_keys_values(self.model, device, dtype)[self.index]
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


class SigmaWindow:
    """The steps an identity acts in: sigma_end <= sigma <= sigma_start.

    Apply PuLID's start_at/end_at are fractions of the schedule; which sigmas they are depends on the
    model sampling of the model that is *sampled*, which a ModelSampling* node placed after Apply PuLID
    changes. So the window keeps the fractions and is `resolve`d again when sampling starts (patch.py
    hooks it to the ModelPatcher's pre-run). Every copy of an apply's patches shares one window
    (`__deepcopy__` returns it), so resolving it once reaches all of them.
    """

    def __init__(self, sigma_start, sigma_end, start_at=None, end_at=None):
        self.sigma_start = float(sigma_start)
        self.sigma_end = float(sigma_end)
        self.start_at = start_at
        self.end_at = end_at

    @classmethod
    def from_fractions(cls, start_at, end_at, sampling):
        window = cls(0.0, 0.0, start_at, end_at)
        window.resolve(sampling)
        return window

    def resolve(self, sampling):
        """Sigmas of start_at/end_at in `sampling` (an object with ComfyUI's `percent_to_sigma`)."""
        if self.start_at is not None:
            self.sigma_start = float(sampling.percent_to_sigma(self.start_at))
            self.sigma_end = float(sampling.percent_to_sigma(self.end_at))

    def contains(self, sigma):
        return self.sigma_end <= sigma <= self.sigma_start

    def missed_by(self, sigmas):
        """True when no sampled step falls in the window: `sigmas` are a sampler's, one per step plus the one it
        ends at. With denoise d only the schedule after 1 - d is sampled, so an end_at below 1 - d (or a start_at
        after the last step) applies the identity nowhere."""
        steps = [float(s) for s in sigmas[:-1]]
        return bool(steps) and not any(self.contains(sigma) for sigma in steps)

    def missed_text(self, sigmas, sampling):
        """What to tell the user when `missed_by(sigmas)`: the window, where sampling starts, the fix."""
        first = sigma_to_fraction(sampling, float(sigmas[0]))
        return (f"PuLID: start_at {self.start_at:g} .. end_at {self.end_at:g} misses every sampled step: this "
                f"sampler's first step is at {first:.2f} of the schedule (a denoise below 1 samples only its end, from "
                f"about 1 - denoise), so the identity is not applied. Raise end_at above {first:.2f}.")

    def __deepcopy__(self, memo):
        return self


def sigma_to_fraction(sampling, sigma, steps=40):
    """The schedule fraction (Apply PuLID's start_at/end_at scale) of `sigma`: percent_to_sigma inverted by bisection,
    as ComfyUI's model samplings only go from fraction to sigma (sigma falls as the fraction grows)."""
    low, high = 0.0, 1.0
    for _ in range(steps):
        middle = (low + high) / 2
        if float(sampling.percent_to_sigma(middle)) > sigma:
            low = middle
        else:
            high = middle
    return (low + high) / 2


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
    window: a SigmaWindow; the identity term is added only inside it.
    previous: a replace already registered at this site. Another IdentityAttention (a second identity)
      is folded in: the text attention runs once and every identity's ortho projects against it, not
      against the other identity's term. A foreign replace (IP-Adapter, InstantID, cubiq's PuLID) gives
      the output ours is added to, as the text attention would.
    `add(callback, **kwargs)` is the protocol those packs share when a replace is already at the site.
    """

    def __init__(self, kv, weight, ortho, window, attention, mask=None, previous=None):
        self.kv = kv
        self.weight = float(weight)
        self.ortho = ortho
        self.window = window
        self.attention = attention
        self.mask = mask
        self.previous = previous
        self.added = ()

    def __deepcopy__(self, memo):
        return copy.copy(self)

    def add(self, callback, **kwargs):
        """Run `callback(out, q, k, v, extra_options, **kwargs)` after this site's identity term and add
        its result, while sigma_end <= sigma <= sigma_start of kwargs (IPAdapter_plus, InstantID and
        cubiq's PuLID call this on a replace they find at a site instead of replacing it).

        A new tuple each time: a copy of this replace made before (ModelPatcher.clone) is not changed.
        """
        self.added = self.added + ((callback, kwargs),)

    def active(self, extra_options):
        if self.weight == 0:
            return False
        sigmas = extra_options.get("sigmas")
        if sigmas is None:
            return True
        return self.window.contains(current_sigma(sigmas))

    def text_attention(self, q, k, v, extra_options):
        if self.previous is not None:
            return self.previous(q, k, v, extra_options)
        return self.attention(q, k, v, extra_options.get("n_heads", self.kv.heads),
                              attn_precision=extra_options.get("attn_precision"), transformer_options=extra_options)

    def chain(self):
        """This replace and the identities it chains over, innermost first."""
        sites = [self]
        while isinstance(sites[-1].previous, IdentityAttention):
            sites.append(sites[-1].previous)
        return sites[::-1]

    def __call__(self, q, k, v, extra_options):
        sites = self.chain()
        text = sites[0].text_attention(q, k, v, extra_options)
        out = text
        for site in sites:
            if site.active(extra_options):
                out = site.identity_term(q, text, extra_options, base=None if out is text else out)
            out = site.run_added(out, q, k, v, extra_options)
        return out

    def run_added(self, out, q, k, v, extra_options):
        """`out` plus the terms of the callbacks registered with `add`, each inside its sigma window."""
        if not self.added:
            return out
        sigmas = extra_options.get("sigmas")
        sigma = current_sigma(sigmas) if sigmas is not None else math.inf
        for callback, kwargs in self.added:
            if kwargs.get("sigma_end", -math.inf) <= sigma <= kwargs.get("sigma_start", math.inf):
                out = out + callback(out, q, k, v, extra_options, **kwargs)
        return out

    def identity_term(self, q, out, extra_options, base=None):
        """`base` (default `out`) plus this site's identity term, ortho against `out`: cond rows see cond
        tokens, uncond rows uncond."""
        chunks = tuple(extra_options.get("cond_or_uncond") or (COND,))
        if q.shape[0] % len(chunks):
            raise ValueError(f"batch of {q.shape[0]} rows does not split into cond_or_uncond {list(chunks)}")
        dtype = compute_dtype(q.dtype, self.ortho)
        id_heads = self.kv.layout(chunks, q.device, dtype)
        mask = None
        if self.mask is not None:
            mask = self.mask.rows(extra_options["original_shape"][-2:], q.shape[1], q.shape[0] // len(chunks),
                                  len(chunks), q.device, dtype)
        return attend(q, out, id_heads, self.weight, self.ortho, mask, base=base)


def build_patches(model, embeds, *, weight, num_zero, ortho, window, attention,
                  mask=None, existing=None):
    """{site key: IdentityAttention} for all 70 SDXL cross-attention sites.

    existing: the attn2 replaces already on the model (key -> callable); each is chained, not lost.
    """
    check_embedding(model, embeds)
    existing = existing or {}
    region = None if mask is None else RegionMask(mask)
    patches = {}
    for index, key in enumerate(SITE_KEYS):
        kv = IDKeyValues(embeds, model, index, num_zero)
        patches[key] = IdentityAttention(
            kv, weight, ortho, window, attention, mask=region, previous=existing.get(key))
    return patches
