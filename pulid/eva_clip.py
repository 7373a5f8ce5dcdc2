"""EVA02-CLIP-L-14-336 vision tower, built with timm.

PuLID reads two things from this tower: the projected CLS embedding (768) and the token states
after blocks 3, 7, 11, 15 and 19. The official code collects those hidden states at the *input*
of blocks 4, 8, 12, 16 and 20 (``0 < idx <= 20 and idx % 4 == 0``), which is the same tensor as
the output of the block before, with no norm applied. timm's ``Eva`` with the
``eva02_large_patch14_clip_336`` config has the same layers (q/k/v projections with q and v bias
only, 2D rotary embedding on the patch tokens, SwiGLU MLP with its sub-LayerNorm, LayerNorm on the
attention output, final LayerNorm on the CLS token, linear head), so no EVA code is vendored here:
the released checkpoints are renamed by timm's own ``checkpoint_filter_fn``.

Three file layouts are read: the original EVA-CLIP checkpoint (``visual.*`` keys, text tower
ignored), timm's own state dict, and open_clip's (``visual.trunk.*``: open_clip wraps the timm
model and, for EVA02-L-14-336, keeps the 768 projection as the timm head).
"""
import logging
import math
import os
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import state_dict
from .catalog import EVA_CLIP
from .errors import ModelFileError, PulidFormatError

logger = logging.getLogger(__name__)

EVA_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
EVA_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HIDDEN_BLOCKS = (3, 7, 11, 15, 19)
TIMM_NAME = "eva02_large_patch14_clip_336"
DOWNLOAD_HINT = (f"Download {EVA_CLIP.filename} from {EVA_CLIP.urls[0]} into models/{EVA_CLIP.folder} "
                 f"(the open_clip/timm EVA02-L-14-336 weights work too).")

_PREFIXES = ("visual.trunk.", "visual.", "")
_NESTING_KEYS = ("state_dict", "module", "model")


@dataclass
class EvaClipConfig:
    """Sizes of an EVA02-CLIP vision tower, read from a checkpoint's tensor shapes."""

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_hidden: int = 2730
    patch_size: int = 14
    img_size: int = 336
    out_dim: int = 768


class EvaClipVision(nn.Module):
    """Wraps timm's Eva so one call returns what PuLID needs: (pooled [N, out], hidden list)."""

    def __init__(self, trunk, hidden_blocks=HIDDEN_BLOCKS):
        super().__init__()
        self.trunk = trunk
        self.hidden_blocks = tuple(hidden_blocks)
        self.image_size = trunk.patch_embed.img_size[0]

    def forward(self, pixels):
        last, taken = self.trunk.forward_intermediates(
            pixels,
            indices=list(self.hidden_blocks),
            return_prefix_tokens=True,
            norm=False,
            output_fmt="NLC",
        )
        # timm splits the CLS token off each intermediate; PuLID uses all 577 tokens.
        hidden = [torch.cat([prefix, tokens], dim=1) for tokens, prefix in taken]
        pooled = self.trunk.forward_head(last)
        return pooled, hidden


def preprocess(pixels, image_size=336, antialias=True):
    """Resize RGB [N,3,H,W] in [0,1] to ``image_size`` (bicubic) and apply the CLIP mean/std.

    The official pipeline calls torchvision's ``resize`` with its default antialiasing, which is on
    for tensors in every torchvision a current ComfyUI runs with (0.17+; 0.15, pinned by the official
    repo, did not antialias tensors). ``antialias=False`` reproduces those old numbers.
    """
    if pixels.shape[-2:] != (image_size, image_size):
        pixels = F.interpolate(pixels, size=(image_size, image_size), mode="bicubic",
                               align_corners=False, antialias=antialias)
    mean = torch.tensor(EVA_CLIP_MEAN, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(EVA_CLIP_STD, dtype=pixels.dtype, device=pixels.device).view(1, 3, 1, 1)
    return (pixels - mean) / std


def load_eva_clip(path, device=None, dtype=None):
    """Load an EVA02-CLIP-L-14-336 vision tower from ``path`` (.pt/.pth/.bin pickle or .safetensors).

    Only the vision tower is built: loading the face encoder never pays for the text tower, which only prompt
    adherence needs (``tradeoff.load_clip`` builds both from one read). Returns an ``EvaClipVision`` in eval mode.
    """
    return vision_tower(read_checkpoint(path), path, device, dtype)


def read_checkpoint(path) -> dict:
    """The tensor dict of an EVA-CLIP file (training wrappers such as {"state_dict": ...} taken off).

    The one read of the file for both towers: ``vision_tower`` and ``clip_text.text_tower`` each take what
    this returns. A missing file is a ModelFileError, anything else unreadable a PulidFormatError, both
    naming the file and the one to download.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"EVA-CLIP file not found: {path}. {DOWNLOAD_HINT}")
    state = state_dict.read(path, lambda problem: f"{path}: cannot be read as a PyTorch or safetensors "
                                                  f"checkpoint: it {problem} {DOWNLOAD_HINT}")
    for _ in range(3):
        if not isinstance(state, dict):
            break
        inner = next((state[k] for k in _NESTING_KEYS if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict):
        raise _not_eva_clip(path, state)
    return state


def vision_tower(state, path, device=None, dtype=None):
    """The vision tower (``EvaClipVision``, eval mode) from ``read_checkpoint``'s dict of the file at ``path``.

    Built on the meta device and the checkpoint tensors assigned to it, so no time is spent on random
    initialisation. ``path`` only names the file in errors.
    """
    prefix = _vision_prefix(state, path)
    config = infer_config(state, prefix, path)
    model = _build(config)
    from timm.models.eva import checkpoint_filter_fn

    filtered = checkpoint_filter_fn(state, model)
    filtered = {k: v for k, v in filtered.items() if not k.startswith("text.")}
    try:
        model.load_state_dict(filtered, strict=True, assign=True)
    except RuntimeError as exc:
        raise PulidFormatError(
            f"{path}: looks like an EVA-CLIP checkpoint but its weights do not fit the EVA02-CLIP-L "
            f"vision tower ({_first_line(exc)}). {DOWNLOAD_HINT}"
        ) from exc
    module = EvaClipVision(model).eval().requires_grad_(False)
    return module.to(device=device or "cpu", dtype=dtype or torch.float32)


def infer_config(state, prefix, path="checkpoint"):
    """Read the tower's sizes from tensor shapes; real files give the EVA02-L sizes."""
    def get(key):
        tensor = state.get(prefix + key)
        if tensor is None:
            raise PulidFormatError(
                f"{path}: not an EVA02-CLIP vision tower (missing '{prefix}{key}'). {DOWNLOAD_HINT}"
            )
        return tensor

    pos_embed = get("pos_embed")
    patch = get("patch_embed.proj.weight")
    embed_dim = pos_embed.shape[-1]
    grid = math.isqrt(pos_embed.shape[1] - 1)
    block_ids = {int(m.group(1)) for k in state
                 if (m := re.match(re.escape(prefix) + r"blocks\.(\d+)\.norm1\.weight$", k))}
    swiglu = state.get(prefix + "blocks.0.mlp.w1.weight", state.get(prefix + "blocks.0.mlp.fc1_g.weight"))
    q_proj = state.get(prefix + "blocks.0.attn.q_proj.weight")
    if swiglu is None or q_proj is None or not block_ids:
        raise PulidFormatError(
            f"{path}: has a ViT but not the EVA02 layout (separate q/k/v projections and a SwiGLU "
            f"MLP were expected). {DOWNLOAD_HINT}"
        )
    depth = max(block_ids) + 1
    if depth <= max(HIDDEN_BLOCKS) or embed_dim % 64 or grid * grid + 1 != pos_embed.shape[1]:
        raise PulidFormatError(
            f"{path}: EVA-CLIP tower with width {embed_dim} and {depth} blocks; PuLID needs "
            f"EVA02-CLIP-L-14-336 (width 1024, 24 blocks). {DOWNLOAD_HINT}"
        )
    return EvaClipConfig(
        embed_dim=embed_dim,
        depth=depth,
        num_heads=embed_dim // 64,
        mlp_hidden=swiglu.shape[0],
        patch_size=patch.shape[-1],
        img_size=grid * patch.shape[-1],
        out_dim=get("head.weight").shape[0],
    )


def _build(config):
    """Create the timm model without random init: on the meta device, then uninitialised CPU memory.

    Only the rotary-embedding tables are not in checkpoints; timm recomputes them with
    ``init_non_persistent_buffers``. A timm without meta-device support builds on the CPU.
    """
    import timm

    kwargs = dict(
        pretrained=False,
        num_classes=config.out_dim,
        img_size=config.img_size,
        patch_size=config.patch_size,
        embed_dim=config.embed_dim,
        depth=config.depth,
        num_heads=config.num_heads,
        # timm sizes the MLP as int(dim * ratio); the +0.5 keeps that exact for any width.
        mlp_ratio=(config.mlp_hidden + 0.5) / config.embed_dim,
    )
    try:
        model = timm.create_model(TIMM_NAME, device="meta", **kwargs)
    except TypeError:
        return timm.create_model(TIMM_NAME, **kwargs)
    if not hasattr(model.rope, "init_non_persistent_buffers"):
        return timm.create_model(TIMM_NAME, **kwargs)
    model.to_empty(device="cpu")
    for module in model.modules():
        if hasattr(module, "init_non_persistent_buffers"):
            module.init_non_persistent_buffers()
    return model


def _vision_prefix(state, path):
    """The key prefix of the vision tower in the file's layout (see the module docstring)."""
    for prefix in _PREFIXES:
        if isinstance(state.get(prefix + "pos_embed"), torch.Tensor):
            return prefix
    raise _not_eva_clip(path, state)


def _not_eva_clip(path, state):
    return PulidFormatError(f"{path}: not an EVA-CLIP checkpoint (found {describe_state(state)}). {DOWNLOAD_HINT}")


def describe_state(state):
    """What a file holds instead of what was expected, for an error message: its type, or its key families."""
    if not isinstance(state, dict):
        return type(state).__name__
    heads = sorted({str(k).split(".")[0] for k in state})
    shown = ", ".join(heads[:8]) + (", ..." if len(heads) > 8 else "")
    return f"{len(state)} entries starting with: {shown}"


def _first_line(exc):
    return str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
