"""The 70 SDXL cross-attention layers that PuLID adds an ID branch to, in checkpoint order.

PuLID checkpoints store one K/V projection pair per cross-attention ("attn2") layer of the SDXL UNet and
number them by the position of that layer in diffusers' `unet.attn_processors`: every transformer block
contributes attn1 (even index) then attn2 (odd index), so the ID layers are n = 1, 3, ..., 139.

diffusers registers `down_blocks` and `up_blocks` before `mid_block` in `UNet2DConditionModel.__init__`,
so the enumeration is down_blocks.1, down_blocks.2, up_blocks.0, up_blocks.1 and the middle block LAST,
even though the middle block runs between the down and up path. A host names the same layers its own
way (ComfyUI: see nodes/attn2.py); here a site is its checkpoint index, its block and its width.
"""
from dataclasses import dataclass

CONTEXT_DIM = 2048
"""Width of the SDXL text context and of every PuLID ID token."""

HEAD_DIM = 64
"""SDXL uses 64 channels per attention head everywhere, so heads = width // 64."""


@dataclass(frozen=True)
class Site:
    """One cross-attention layer that gets an ID branch."""

    block: str
    """The diffusers attention module holding it, e.g. "down_blocks.1.attentions.0"."""
    layer: int
    """Transformer block index inside `block`."""
    width: int
    """Channels of the layer's query/output (640 or 1280): the K/V weights are [width, 2048]."""
    heads: int
    """Attention heads of the layer (width // 64)."""
    n: int
    """Index in the official checkpoint (`id_adapter_attn_layers.<n>` / `ip_adapter.<n>`)."""
    diffusers_name: str
    """The same layer in diffusers naming, for cross-checking against the official pipeline."""


# (diffusers attention module, transformer depth, width), in diffusers order.
BLOCKS = (
    ("down_blocks.1.attentions.0", 2, 640),
    ("down_blocks.1.attentions.1", 2, 640),
    ("down_blocks.2.attentions.0", 10, 1280),
    ("down_blocks.2.attentions.1", 10, 1280),
    ("up_blocks.0.attentions.0", 10, 1280),
    ("up_blocks.0.attentions.1", 10, 1280),
    ("up_blocks.0.attentions.2", 10, 1280),
    ("up_blocks.1.attentions.0", 2, 640),
    ("up_blocks.1.attentions.1", 2, 640),
    ("up_blocks.1.attentions.2", 2, 640),
    ("mid_block.attentions.0", 10, 1280),
)


def _build_sites():
    sites = []
    for module, depth, width in BLOCKS:
        for j in range(depth):
            sites.append(
                Site(
                    block=module,
                    layer=j,
                    width=width,
                    heads=width // HEAD_DIM,
                    n=2 * len(sites) + 1,
                    diffusers_name=f"{module}.transformer_blocks.{j}.attn2",
                )
            )
    return tuple(sites)


SITES = _build_sites()
"""All 70 sites in checkpoint order (n = 1, 3, ..., 139)."""

SITE_INDEX_BY_N = {site.n: i for i, site in enumerate(SITES)}
"""Official checkpoint index n -> position in SITES."""
