"""EVA02-CLIP loading: every layout gives the official EVA-CLIP forward, wrong files give clear errors."""
import math

import pytest
import torch
import torch.nn.functional as F

from testkit import make_face_models
from pulid.errors import ModelFileError, PulidFormatError
from pulid.eva_clip import EVA_CLIP_MEAN, EVA_CLIP_STD, load_eva_clip, preprocess
from testkit.numerics import assert_close

WIDTH, DEPTH = 128, 20


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("eva")
    return {
        "eva-clip": make_face_models.write_eva_clip_checkpoint(root / "EVA02_CLIP_L_336_psz14_s6B.pt", "eva-clip",
                                                               WIDTH, DEPTH, nested=True),
        "timm": make_face_models.write_eva_clip_checkpoint(root / "model.safetensors", "timm", WIDTH, DEPTH),
        "open_clip": make_face_models.write_eva_clip_checkpoint(root / "open_clip_pytorch_model.bin", "open_clip",
                                                                WIDTH, DEPTH),
    }


@pytest.fixture(scope="module")
def pixels():
    return torch.randn(1, 3, 336, 336, generator=torch.Generator().manual_seed(1))


def _rope_tables(head_dim, grid=24, ref_grid=16):
    """EVA-CLIP's 2D rotary tables: half the head for rows, half for columns, pairs interleaved."""
    quarter = head_dim // 4
    freqs = 1.0 / (10000 ** (torch.arange(0, 2 * quarter, 2, dtype=torch.float64) / (2 * quarter)))
    positions = torch.arange(grid, dtype=torch.float64) / grid * ref_grid
    angles = (positions[:, None] * freqs[None]).repeat_interleave(2, dim=-1)  # [grid, head_dim/2]
    rows = angles[:, None, :].expand(grid, grid, -1)
    cols = angles[None, :, :].expand(grid, grid, -1)
    table = torch.cat([rows, cols], dim=-1).reshape(grid * grid, head_dim)
    return table.cos(), table.sin()


def _rotate_pairs(x):
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([-odd, even], dim=-1).flatten(-2)


def reference_forward(sd, x):
    """Plain EVA02-CLIP visual forward (official semantics) on timm-named weights."""
    ln = lambda t, name: F.layer_norm(t, t.shape[-1:], sd[name + ".weight"], sd[name + ".bias"], 1e-6)
    lin = lambda t, name, bias=True: F.linear(t, sd[name + ".weight"], sd.get(name + ".bias") if bias else None)
    w = sd["patch_embed.proj.weight"]
    tokens = F.conv2d(x, w, sd["patch_embed.proj.bias"], stride=w.shape[-1]).flatten(2).transpose(1, 2)
    tokens = torch.cat([sd["cls_token"].expand(len(x), -1, -1), tokens], dim=1) + sd["pos_embed"]
    width = tokens.shape[-1]
    heads = width // 64
    cos, sin = _rope_tables(64)
    hidden = []
    for i in range(DEPTH):
        if i in (4, 8, 12, 16, 20):
            hidden.append(tokens)
        p = f"blocks.{i}."
        h = ln(tokens, p + "norm1")
        q, k, v = (lin(h, p + "attn.q_proj"), lin(h, p + "attn.k_proj", bias=False), lin(h, p + "attn.v_proj"))
        q, k, v = (t.reshape(len(x), -1, heads, 64).transpose(1, 2) for t in (q, k, v))
        q = torch.cat([q[:, :, :1], q[:, :, 1:] * cos + _rotate_pairs(q[:, :, 1:]) * sin], dim=2)
        k = torch.cat([k[:, :, :1], k[:, :, 1:] * cos + _rotate_pairs(k[:, :, 1:]) * sin], dim=2)
        attn = (q @ k.transpose(-1, -2) / math.sqrt(64)).softmax(-1)
        out = (attn @ v).transpose(1, 2).reshape(len(x), -1, width)
        tokens = tokens + lin(ln(out, p + "attn.norm"), p + "attn.proj")
        h = ln(tokens, p + "norm2")
        gated = F.silu(lin(h, p + "mlp.fc1_g")) * lin(h, p + "mlp.fc1_x")
        tokens = tokens + lin(ln(gated, p + "mlp.norm"), p + "mlp.fc2")
    hidden.append(tokens)  # output of block 19 = input of block 20 in the 24-block model
    pooled = lin(ln(tokens, "norm")[:, 0], "head")
    return pooled, hidden


def test_all_layouts_match_plain_reference(files, pixels):
    sd = {k: v.double() for k, v in make_face_models.eva_timm_state_dict(WIDTH, DEPTH).items()}
    with torch.no_grad():
        ref_pooled, ref_hidden = reference_forward(sd, pixels.double())
        for layout, path in files.items():
            model = load_eva_clip(path)
            pooled, hidden = model(pixels)
            assert pooled.shape == (1, 768), layout
            assert len(hidden) == 5 and all(h.shape == (1, 577, WIDTH) for h in hidden), layout
            assert_close(pooled, ref_pooled, "network", msg=layout)
            for got, want in zip(hidden, ref_hidden):
                assert_close(got, want, "network", msg=layout)


def test_dtype_and_no_grad(files, pixels):
    model = load_eva_clip(files["timm"], dtype=torch.bfloat16)
    assert next(model.parameters()).dtype == torch.bfloat16
    assert not any(p.requires_grad for p in model.parameters())
    assert not model.training
    pooled, _ = model(pixels.bfloat16())
    assert pooled.dtype == torch.bfloat16


def test_preprocess_matches_plain_formula():
    # A smooth picture: float32 resizing places its taps with float32 coordinates, an error that grows with
    # the picture's pixel-to-pixel change; photos change smoothly, per-pixel noise would measure only that.
    coarse = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    image = F.interpolate(coarse, size=(512, 512), mode="bilinear", align_corners=False).float()
    out = preprocess(image)
    resized = F.interpolate(image.double(), size=(336, 336), mode="bicubic", align_corners=False, antialias=True)
    mean = torch.tensor(EVA_CLIP_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(EVA_CLIP_STD, dtype=torch.float64).view(1, 3, 1, 1)
    # a resize is a weighted sum of taps whose weights are themselves computed in float32: layer depth
    assert_close(out, (resized - mean) / std, "layer")
    assert preprocess(torch.zeros(1, 3, 336, 336)).shape == (1, 3, 336, 336)
    plain = F.interpolate(image.double(), size=(336, 336), mode="bicubic", align_corners=False)
    assert_close(preprocess(image, antialias=False), (plain - mean) / std, "layer")
    assert not torch.allclose(out.double(), (plain - mean) / std, atol=0.01)  # the two settings really differ


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="nope.pt.*EVA02_CLIP_L_336_psz14_s6B.pt"):
        load_eva_clip(tmp_path / "nope.pt")


def test_garbage_file(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(PulidFormatError, match="broken.pt"):
        load_eva_clip(path)


def test_other_model_names_file_and_contents(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4, 4)}, path)
    with pytest.raises(PulidFormatError, match=r"sd15.safetensors.*model.*EVA02_CLIP_L_336"):
        load_eva_clip(path)


def test_plain_vit_is_rejected(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "vit.safetensors"
    save_file({"pos_embed": torch.zeros(1, 577, 128), "patch_embed.proj.weight": torch.zeros(128, 3, 14, 14),
               "blocks.0.norm1.weight": torch.ones(128), "blocks.0.attn.qkv.weight": torch.zeros(384, 128)}, path)
    with pytest.raises(PulidFormatError, match="vit.safetensors.*EVA02 layout"):
        load_eva_clip(path)


def test_too_shallow_tower_is_rejected(tmp_path):
    path = make_face_models.write_eva_clip_checkpoint(tmp_path / "tiny.safetensors", "timm", 64, 8)
    with pytest.raises(PulidFormatError, match="8 blocks"):
        load_eva_clip(path)
