"""PuLID v1.1 ID encoder (IDFormer): a perceiver-style resampler that turns faces into 32 tokens.

32 learned latents are concatenated with 5 ID tokens per face and refined by 10 attention + feed-forward
layers; every pair of layers also sees one of five EVA-CLIP hidden layers. Several faces enter one pass
(their ID tokens and hidden states are concatenated), which is how v1.1 blends reference images.
Parameter names follow the official `pulid_v1.1.safetensors` (`layers.<i>.0.*` attention,
`layers.<i>.1.*` feed-forward, `mapping_<i>.*`, `id_embedding_mapping.*`, `latents`, `proj_out`).
"""
from dataclasses import dataclass

import torch
from torch import nn

from .encoder_v1 import make_mlp
from .sites import CONTEXT_DIM


@dataclass(frozen=True)
class IDFormerConfig:
    dim: int = 1024
    depth: int = 10
    """Layers; split evenly over the five EVA-CLIP hidden layers."""
    heads: int = 16
    head_dim: int = 64
    num_id_tokens: int = 5
    """Tokens made from each face's id_cond."""
    num_queries: int = 32
    """Learned latents; also the number of output tokens."""
    id_dim: int = 1280
    vit_dim: int = 1024
    output_dim: int = CONTEXT_DIM
    ff_mult: int = 4
    num_vit_layers: int = 5


class LatentAttention(nn.Module):
    """Latents attend to [context, latents]; keys/values share one projection (`to_kv`)."""

    def __init__(self, dim, heads, head_dim):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.head_dim = head_dim
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _split_heads(self, x):
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, context, latents):
        context = self.norm1(context)
        latents = self.norm2(latents)
        q = self._split_heads(self.to_q(latents))
        k, v = self.to_kv(torch.cat([context, latents], dim=1)).chunk(2, dim=-1)
        k, v = self._split_heads(k), self._split_heads(v)
        # Both sides are scaled by d^-1/4 before the product (the official op order: it keeps fp16
        # scores in range), and the softmax runs in float32.
        scale = self.head_dim ** -0.25
        scores = (q * scale) @ (k * scale).transpose(-2, -1)
        probs = torch.softmax(scores.float(), dim=-1).to(scores.dtype)
        out = (probs @ v).transpose(1, 2).reshape(latents.shape[0], latents.shape[1], -1)
        return self.to_out(out)


def feed_forward(dim, mult):
    """LayerNorm, bias-free Linear up, exact GELU, bias-free Linear down (indices 0, 1, 3 hold weights)."""
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, dim * mult, bias=False),
        nn.GELU(),
        nn.Linear(dim * mult, dim, bias=False),
    )


class IDFormer(nn.Module):
    """v1.1 encoder: `forward(id_cond [N,1280] or [N,M,1280], vit_hidden 5 x [N,M*(1+P),1024]) -> [N,32,2048]`."""

    version = "v1.1"

    def __init__(self, cfg=IDFormerConfig()):
        super().__init__()
        self.cfg = cfg
        self.latents = nn.Parameter(torch.empty(1, cfg.num_queries, cfg.dim))
        self.proj_out = nn.Parameter(torch.empty(cfg.dim, cfg.output_dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([LatentAttention(cfg.dim, cfg.heads, cfg.head_dim), feed_forward(cfg.dim, cfg.ff_mult)])
            for _ in range(cfg.depth)
        )
        for i in range(cfg.num_vit_layers):
            setattr(self, f"mapping_{i}", make_mlp(cfg.vit_dim, 1024, cfg.dim))
        self.id_embedding_mapping = make_mlp(cfg.id_dim, 1024, cfg.dim * cfg.num_id_tokens)

    @property
    def num_tokens(self):
        return self.cfg.num_queries

    def forward(self, id_cond, vit_hidden):
        cfg = self.cfg
        dtype = self.latents.dtype
        num_faces = id_cond.shape[1] if id_cond.ndim == 3 else 1
        id_tokens = self.id_embedding_mapping(id_cond.to(dtype))
        id_tokens = id_tokens.reshape(-1, cfg.num_id_tokens * num_faces, cfg.dim)
        latents = torch.cat([self.latents.expand(id_tokens.shape[0], -1, -1), id_tokens], dim=1)
        per_group = cfg.depth // cfg.num_vit_layers
        for i, hidden in enumerate(vit_hidden):
            context = torch.cat([id_tokens, getattr(self, f"mapping_{i}")(hidden.to(dtype))], dim=1)
            for attention, ff in self.layers[i * per_group:(i + 1) * per_group]:
                latents = attention(context, latents) + latents
                latents = ff(latents) + latents
        return latents[:, :cfg.num_queries] @ self.proj_out
