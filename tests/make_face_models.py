"""Small model files in the real formats, with random weights, for tests and benchmarks.

No weights can be downloaded in CI, so these writers produce files that the loaders cannot tell
from the released ones except by their values:

- ``write_eva_clip_checkpoint``: EVA02-CLIP vision tower in the EVA-CLIP, timm or open_clip layout.
- ``write_antelopev2``: ``scrfd_10g_bnkps.onnx`` + ``glintr100.onnx`` exported with torch.onnx.
  The small detector is deterministic: it fires on bright skin-like blobs (see ``draw_face``).
- ``write_facexlib``: ``detection_Resnet50_Final.pth`` and ``parsing_bisenet.pth`` in facexlib's
  own architectures, with the detection head set so that it fires everywhere or never.
"""
import os

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

EVA_SMALL = dict(embed_dim=128, depth=20)
EVA_REAL = dict(embed_dim=1024, depth=24)


# ----------------------------------------------------------------------------------- EVA-CLIP
def eva_timm_state_dict(embed_dim=128, depth=20, seed=0):
    """Random weights for an EVA02-CLIP tower of the given size, with timm's key names."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(
        "eva02_large_patch14_clip_336", pretrained=False, num_classes=768,
        embed_dim=embed_dim, depth=depth, num_heads=embed_dim // 64,
        mlp_ratio=(int(embed_dim * 8 / 3) + 0.5) / embed_dim,
    )
    state = model.state_dict()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in state.items():
            # Every parameter, norms and biases included, is perturbed so that a wrong mapping shows.
            value.add_(torch.randn(value.shape, generator=generator) * 0.05)
    return state


def _to_eva_clip_names(state, embed_dim):
    """timm names -> the names in EVA02_CLIP_L_336_psz14_s6B.pt (vision part)."""
    renames = (("mlp.fc1_g", "mlp.w1"), ("mlp.fc1_x", "mlp.w2"), ("mlp.fc2", "mlp.w3"),
               ("mlp.norm", "mlp.ffn_ln"), ("attn.norm", "attn.inner_attn_ln"),
               ("attn.q_proj.bias", "attn.q_bias"), ("attn.v_proj.bias", "attn.v_bias"))
    out = {}
    for key, value in state.items():
        for old, new in renames:
            key = key.replace(old, new)
        out["visual." + key] = value
    # The original file stores the rotary tables (and a copy per block); loaders must ignore them.
    grid = 24
    table = torch.zeros(grid * grid, 64 if embed_dim >= 64 else embed_dim)
    out["visual.rope.freqs_cos"] = table
    out["visual.rope.freqs_sin"] = table
    for key in [k for k in out if k.endswith("attn.proj.weight")]:
        out[key.replace("proj.weight", "rope.freqs_cos")] = table
    return out


def _text_tower():
    return {"text.token_embedding.weight": torch.randn(16, 8), "text.ln_final.weight": torch.ones(8),
            "logit_scale": torch.tensor(4.6)}


def write_eva_clip_checkpoint(path, layout="eva-clip", embed_dim=128, depth=20, seed=0, real_size=False,
                              nested=False):
    """Write an EVA02-CLIP vision tower checkpoint; returns ``path``.

    layout: "eva-clip" (torch pickle, ``visual.*`` + a text tower, like EVA02_CLIP_L_336_psz14_s6B.pt),
    "timm" (safetensors with timm's Eva keys) or "open_clip" (torch pickle, ``visual.trunk.*``).
    ``real_size=True`` writes the real EVA02-L size (300M parameters, ~1.2 GB) for benchmarks.
    ``nested=True`` wraps the dict in {"state_dict": ...} as training checkpoints do.
    """
    if real_size:
        embed_dim, depth = EVA_REAL["embed_dim"], EVA_REAL["depth"]
    state = eva_timm_state_dict(embed_dim, depth, seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if layout == "timm":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, path)
        return path
    if layout == "eva-clip":
        out = _to_eva_clip_names(state, embed_dim)
    elif layout == "open_clip":
        out = {"visual.trunk." + k: v for k, v in state.items()}
    else:
        raise ValueError(f"unknown layout {layout!r}")
    out.update(_text_tower())
    torch.save({"state_dict": out} if nested else out, path)
    return path
