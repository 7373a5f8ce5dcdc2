"""Generators for PuLID-SDXL checkpoint files in the real formats, with random weights (shared test helper).

Other tests and the benchmarks import this module (`from testkit import make_pulid`); the function names
and signatures below are stable. The key names and shapes are written out here from the official
PuLID code, independently of `pulid/`, so a naming mistake in the loader cannot hide behind the generator.

Sizes (all 70 sites, real shapes): v1 is ~396M parameters (0.8 GB fp16, 1.6 GB fp32), v1.1 ~492M.
Encoder weights are seeded random with sane scales (so forward passes give finite, non-trivial values)
and cached per (version, seed) in float32 (generated once per session); the 140 K/V weights are one
seeded random base per (width, k/v), rotated by a different amount for every site, so each is distinct.
"""
import functools
import io
import os
import pickle
import zipfile

import torch

# Official n -> width, in checkpoint order (independent restatement of pulid/sites.py).
KV_WIDTHS = [640] * 4 + [1280] * 20 + [1280] * 30 + [640] * 6 + [1280] * 10
KV_NS = [2 * i + 1 for i in range(70)]


def _mlp_shapes(prefix, in_dim, hidden, out_dim):
    return {
        f"{prefix}.0.weight": (hidden, in_dim), f"{prefix}.0.bias": (hidden,),
        f"{prefix}.1.weight": (hidden,), f"{prefix}.1.bias": (hidden,),
        f"{prefix}.3.weight": (hidden, hidden), f"{prefix}.3.bias": (hidden,),
        f"{prefix}.4.weight": (hidden,), f"{prefix}.4.bias": (hidden,),
        f"{prefix}.6.weight": (out_dim, hidden), f"{prefix}.6.bias": (out_dim,),
    }


def encoder_shapes(version):
    """Official encoder parameter names -> shapes (v1 IDEncoder, v1.1 IDFormer)."""
    shapes = {}
    if version == "v1":
        shapes.update(_mlp_shapes("body", 1280, 1024, 5 * 2048))
        for i in range(5):
            shapes.update(_mlp_shapes(f"mapping_{i}", 1024, 1024, 2048))
            shapes.update(_mlp_shapes(f"mapping_patch_{i}", 1024, 1024, 2048))
    elif version == "v1.1":
        shapes["latents"] = (1, 32, 1024)
        shapes["proj_out"] = (1024, 2048)
        for i in range(10):
            a, f = f"layers.{i}.0", f"layers.{i}.1"
            shapes.update({
                f"{a}.norm1.weight": (1024,), f"{a}.norm1.bias": (1024,),
                f"{a}.norm2.weight": (1024,), f"{a}.norm2.bias": (1024,),
                f"{a}.to_q.weight": (1024, 1024), f"{a}.to_kv.weight": (2048, 1024),
                f"{a}.to_out.weight": (1024, 1024),
                f"{f}.0.weight": (1024,), f"{f}.0.bias": (1024,),
                f"{f}.1.weight": (4096, 1024), f"{f}.3.weight": (1024, 4096),
            })
        for i in range(5):
            shapes.update(_mlp_shapes(f"mapping_{i}", 1024, 1024, 1024))
        shapes.update(_mlp_shapes("id_embedding_mapping", 1280, 1024, 5 * 1024))
    else:
        raise ValueError(version)
    return shapes


def encoder_state_dict(version, seed=0):
    """Random float32 encoder weights under the official names (no prefix). Fresh tensors on every call."""
    return {k: v.clone() for k, v in _encoder_fp32(version, seed).items()}


@functools.lru_cache(maxsize=2)
def _encoder_fp32(version, seed):
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in encoder_shapes(version).items():
        t = torch.randn(shape, generator=g)
        if name in ("latents", "proj_out"):
            t *= 1024 ** -0.5
        elif len(shape) == 2:
            t *= shape[1] ** -0.5
        elif name.endswith(".weight"):  # LayerNorm gain
            t = 1 + 0.1 * t
        else:
            t *= 0.05
        state[name] = t
    return state


def kv_state_dict(seed=0, dtype=torch.float32):
    """[(n, Wk, Wv)] for the 70 sites in checkpoint order, in `dtype`.

    Each weight is its width's seeded random base rotated by a site-specific amount: every one of the
    140 tensors differs (so a weight loaded at the wrong site is caught) at the cost of a copy.
    """
    g = torch.Generator().manual_seed(seed + 1)
    base = {(w, kind): (0.02 * torch.randn(w * 2048, generator=g)).to(dtype) for w in (640, 1280) for kind in "kv"}

    def rotated(flat, shift, width):
        return torch.cat([flat[shift:], flat[:shift]]).view(width, 2048)

    return [
        (n, rotated(base[(w, "k")], 101 * i + 1, w), rotated(base[(w, "v")], 103 * i + 2, w))
        for i, (n, w) in enumerate(zip(KV_NS, KV_WIDTHS))
    ]


def pulid_state_dict(version="v1", layout="official", dtype=torch.float32, seed=0):
    """The flat {key: tensor} a checkpoint of that version/layout holds."""
    enc_prefix, kv_fmt = {
        "official": ("id_adapter.", "id_adapter_attn_layers.{n}.id_to_{kv}.weight"),
        "ip-adapter": ("image_proj.", "ip_adapter.{n}.to_{kv}_ip.weight"),
    }[layout]
    state = {enc_prefix + k: v.to(dtype, copy=True) for k, v in _encoder_fp32(version, seed).items()}
    for n, wk, wv in kv_state_dict(seed, dtype):
        state[kv_fmt.format(n=n, kv="k")] = wk
        state[kv_fmt.format(n=n, kv="v")] = wv
    return state


def write_pulid_checkpoint(path, version="v1", layout="official", dtype=torch.float32, seed=0, fmt=None):
    """Write a real-size random PuLID-SDXL checkpoint and return its flat state dict.

    fmt: "bin" (torch.save) or "safetensors"; default like the real files (official v1 -> bin, else
    safetensors). An ip-adapter .bin nests the two parts: {"image_proj": {...}, "ip_adapter": {...}}.
    """
    fmt = fmt or ("bin" if (version, layout) == ("v1", "official") else "safetensors")
    state = pulid_state_dict(version, layout, dtype, seed)
    _write(path, state, fmt, nest=layout == "ip-adapter")
    return state


def _write(path, state, fmt, nest=False):
    path = os.fspath(path)
    if fmt == "safetensors":
        from safetensors.torch import save_file

        save_file(state, path)
    elif fmt == "bin":
        if nest:
            nested = {}
            for key, value in state.items():
                top, rest = key.split(".", 1)
                nested.setdefault(top, {})[rest] = value
            state = nested
        torch.save(state, path)
    else:
        raise ValueError(fmt)


def write_flux_checkpoint(path):
    """A small file with PuLID-FLUX key names (`pulid_encoder.*`, `pulid_ca.<i>.*`)."""
    _write(path, {
        "pulid_encoder.latents": torch.randn(1, 32, 1024),
        "pulid_encoder.id_embedding_mapping.0.weight": torch.randn(8, 8),
        "pulid_ca.0.to_q.weight": torch.randn(8, 8),
        "pulid_ca.0.to_kv.weight": torch.randn(16, 8),
    }, "safetensors")


def write_plain_ip_adapter(path, fmt="safetensors"):
    """A small IP-Adapter (plain SDXL image-prompt projection, no PuLID encoder)."""
    state = {"image_proj.proj.weight": torch.randn(8, 4), "image_proj.norm.weight": torch.randn(8)}
    for n in KV_NS[:2]:
        state[f"ip_adapter.{n}.to_k_ip.weight"] = torch.randn(640, 4)
        state[f"ip_adapter.{n}.to_v_ip.weight"] = torch.randn(640, 4)
    _write(path, state, fmt, nest=True)


def write_truncated(path, fmt="safetensors"):
    """A checkpoint cut off in the middle (like an interrupted download)."""
    buf = io.BytesIO()
    state = {"id_adapter.body.0.weight": torch.randn(256, 64), "id_adapter.body.0.bias": torch.randn(256)}
    if fmt == "safetensors":
        from safetensors.torch import save

        data = save(state)
    else:
        torch.save(state, buf)
        data = buf.getvalue()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


def write_empty(path):
    open(path, "wb").close()


class _Payload:
    """Unpickling this object opens (creates) the marker file: harmless, but it proves code ran."""

    def __init__(self, marker):
        self.marker = os.fspath(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_malicious_pickle(path, marker, fmt="bin"):
    """A checkpoint whose unpickling would create `marker`. fmt "bin": torch.save zip; "legacy": torch.save's
    non-zip format; "pickle": raw pickle."""
    state = {"id_adapter.body.0.weight": torch.zeros(2, 2), "payload": _Payload(marker)}
    if fmt in ("bin", "legacy"):
        torch.save(state, os.fspath(path), _use_new_zipfile_serialization=fmt == "bin")
    else:
        with open(path, "wb") as f:
            pickle.dump(state, f, protocol=2)
    assert zipfile.is_zipfile(path) == (fmt == "bin")
