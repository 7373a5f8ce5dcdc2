"""PuLID v1 ID encoder: an MLP that turns one face into 10 tokens of the SDXL text width.

Five tokens come from the face-recognition + CLIP embedding (`id_cond`, 1280 = 512 ArcFace + 768 EVA-CLIP),
five from five EVA-CLIP hidden layers (class token and patch mean mapped separately). Parameter names
follow the official checkpoint (`body.*`, `mapping_<i>.*`, `mapping_patch_<i>.*`) so it loads strictly.
"""
from dataclasses import dataclass

import torch
from torch import nn

from .sites import CONTEXT_DIM


@dataclass(frozen=True)
class IDEncoderConfig:
    id_dim: int = 1280
    """ArcFace (512) + normalised EVA-CLIP embedding (768)."""
    vit_dim: int = 1024
    """Width of the EVA-CLIP hidden states."""
    context_dim: int = CONTEXT_DIM
    """Width of one output token (SDXL cross-attention context)."""
    num_id_tokens: int = 5
    num_vit_layers: int = 5


def make_mlp(in_dim, hidden_dim, out_dim):
    """Linear-LayerNorm-LeakyReLU twice, then a Linear: the block every PuLID mapping uses.

    Indices 0, 1, 3, 4, 6 carry parameters, matching the official state-dict names. LayerNorm eps and
    the LeakyReLU slope are torch's defaults (1e-5, 0.01), as in the official code.
    """
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim),
        nn.LayerNorm(hidden_dim),
        nn.LeakyReLU(),
        nn.Linear(hidden_dim, hidden_dim),
        nn.LayerNorm(hidden_dim),
        nn.LeakyReLU(),
        nn.Linear(hidden_dim, out_dim),
    )


class IDEncoder(nn.Module):
    """v1 encoder: `forward(id_cond [N,1280], vit_hidden 5 x [N,1+P,1024]) -> [N,10,2048]`."""

    version = "v1"

    def __init__(self, cfg=IDEncoderConfig()):
        super().__init__()
        self.cfg = cfg
        hidden = 1024  # official: min(context_dim * tokens // 4, 1024) and // 2, both 1024 for SDXL
        self.body = make_mlp(cfg.id_dim, hidden, cfg.context_dim * cfg.num_id_tokens)
        for i in range(cfg.num_vit_layers):
            setattr(self, f"mapping_{i}", make_mlp(cfg.vit_dim, hidden, cfg.context_dim))
            setattr(self, f"mapping_patch_{i}", make_mlp(cfg.vit_dim, hidden, cfg.context_dim))

    @property
    def num_tokens(self):
        return self.cfg.num_id_tokens + self.cfg.num_vit_layers

    def forward(self, id_cond, vit_hidden):
        dtype = self.body[0].weight.dtype
        id_tokens = self.body(id_cond.to(dtype)).reshape(-1, self.cfg.num_id_tokens, self.cfg.context_dim)
        vit_tokens = []
        for i, hidden in enumerate(vit_hidden):
            hidden = hidden.to(dtype)
            cls_token = getattr(self, f"mapping_{i}")(hidden[:, :1])
            patches = getattr(self, f"mapping_patch_{i}")(hidden[:, 1:]).mean(dim=1, keepdim=True)
            vit_tokens.append(cls_token + patches)
        return torch.cat([id_tokens, *vit_tokens], dim=1)
