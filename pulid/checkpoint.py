"""Loading PuLID-SDXL checkpoints: format detection, strict key/shape checks, safe unpickling.

Three layouts are accepted, in fp16, bf16 or fp32, detected from the keys (never from the file name):
  official     `pulid_v1.bin` / `pulid_v1.1.safetensors`: `id_adapter.*` + `id_adapter_attn_layers.<n>.id_to_{k,v}.weight`
  ip-adapter   `ip-adapter_pulid_sdxl_fp16.safetensors` and converted v1.1 files: `image_proj.*` +
               `ip_adapter.<n>.to_{k,v}_ip.weight` (also nested {"image_proj": ..., "ip_adapter": ...} in a .bin)
The encoder version comes from the encoder keys (v1 MLP `body.*`, v1.1 IDFormer `id_embedding_mapping.*`).
Files are read by `state_dict.read` (safetensors, or torch pickles with `weights_only=True` only).
"""
import logging
import os
import re
from dataclasses import dataclass

import torch
from torch import nn

from . import state_dict
from .catalog import PULID_V1, PULID_V1_1
from .encoder_v1 import IDEncoder
from .errors import ModelFileError, PulidFormatError
from .idformer import IDFormer
from .sites import CONTEXT_DIM, SITE_INDEX_BY_N, SITES

log = logging.getLogger(__name__)

SUPPORTED = (
    f"Supported: {PULID_V1.filename} and {PULID_V1_1.filename} ({PULID_V1_1.urls[0].split('/resolve/')[0]}), "
    "ip-adapter_pulid_sdxl_fp16.safetensors, or a v1.1 file converted to that IP-Adapter layout."
)

ENCODERS = {"v1": IDEncoder, "v1.1": IDFormer}

# layout -> (encoder prefix, K/V prefix, K/V key pattern after the prefix)
LAYOUTS = {
    "official": ("id_adapter.", "id_adapter_attn_layers.", re.compile(r"(\d+)\.id_to_([kv])\.weight")),
    "ip-adapter": ("image_proj.", "ip_adapter.", re.compile(r"(\d+)\.to_([kv])_ip\.weight")),
}


@dataclass
class PulidModel:
    """A loaded PuLID-SDXL checkpoint: the ID encoder plus the per-site K/V projections."""

    version: str
    """"v1" (MLP encoder, 10 tokens) or "v1.1" (IDFormer, 32 tokens)."""
    encoder: nn.Module
    """`encoder(id_cond, vit_hidden) -> [N, num_tokens, 2048]`, in eval mode, no gradients."""
    kv_weights: list
    """70 (Wk, Wv) pairs, each [site width, 2048], in `sites.SITES` order, on CPU in the file's dtype."""
    path: str
    layout: str
    """"official" or "ip-adapter"."""
    num_tokens: int
    checkpoint_dtype: torch.dtype

    @property
    def name(self):
        return os.path.basename(self.path)


def load_pulid_model(path, device=None, dtype=None):
    """Load and check a PuLID-SDXL checkpoint.

    The encoder goes to `device` (default CPU) in `dtype` (default float32: the official pipelines run
    the encoder in float32 whatever the file stores, and it runs once per face). The K/V weights stay
    on CPU in the file's dtype; the attention patch moves and casts them once per device.
    """
    path = os.fspath(path)
    return model_from_state_dict(read_state_dict(path), path, device=device, dtype=dtype)


def model_from_state_dict(state, path, device=None, dtype=None):
    """`load_pulid_model` for a flat state dict already in memory; `path` is only used in messages."""
    layout, version = detect_layout(state, path)
    enc_prefix, kv_prefix, kv_pattern = LAYOUTS[layout]
    enc_state = {k[len(enc_prefix):]: v for k, v in state.items() if k.startswith(enc_prefix)}
    kv_state = {k[len(kv_prefix):]: v for k, v in state.items() if k.startswith(kv_prefix)}
    stray = [k for k in state if not k.startswith((enc_prefix, kv_prefix))]
    if stray:
        raise PulidFormatError(_describe(path, f"has keys that belong to no PuLID part: {_few(stray)}."))

    encoder = _build_encoder(version, enc_state, enc_prefix, path, device, dtype or torch.float32)
    kv_weights = _collect_kv(kv_state, kv_prefix, kv_pattern, path)
    model = PulidModel(
        version=version,
        encoder=encoder,
        kv_weights=kv_weights,
        path=path,
        layout=layout,
        num_tokens=encoder.num_tokens,
        checkpoint_dtype=kv_weights[0][0].dtype,
    )
    log.info("Loaded PuLID %s (%s layout, %s) from %s", version, layout, model.checkpoint_dtype, path)
    return model


def read_state_dict(path):
    """Flat {key: tensor} of a PuLID checkpoint; every failure is a user-facing error."""
    if not os.path.exists(path):
        raise ModelFileError(f"PuLID model file not found: {path}. {SUPPORTED} Put it in models/{PULID_V1_1.folder}.")
    return _flatten(state_dict.read(path, lambda problem: _describe(path, problem)), path)


def _flatten(state, path):
    if not isinstance(state, dict):
        raise PulidFormatError(_describe(path, f"holds a {type(state).__name__}, not a state dict."))
    flat = {}
    for key, value in state.items():
        if isinstance(value, dict) and key in ("image_proj", "ip_adapter"):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    bad = [k for k, v in flat.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise PulidFormatError(_describe(path, f"holds non-tensor entries: {_few(bad)}."))
    if not flat:
        raise PulidFormatError(_describe(path, "holds no tensors."))
    return flat


def detect_layout(state, path):
    """(layout, version) from the keys, or a PulidFormatError that says what the file looks like."""
    keys = list(state)

    def has(prefix):
        return any(k.startswith(prefix) for k in keys)

    if has("pulid_encoder.") or has("pulid_ca."):
        raise PulidFormatError(_describe(path, "looks like a PuLID-FLUX checkpoint; this pack drives SDXL models."))
    if has("id_adapter.") or has("id_adapter_attn_layers."):
        layout = "official"
    elif has("image_proj.") or has("ip_adapter."):
        layout = "ip-adapter"
    elif has("model.diffusion_model.") or has("down_blocks.") or has("input_blocks."):
        raise PulidFormatError(_describe(path, "looks like a Stable Diffusion model, not a PuLID checkpoint."))
    else:
        raise PulidFormatError(_describe(path, f"has no PuLID keys (first keys: {_few(keys)})."))

    enc_prefix = LAYOUTS[layout][0]
    if f"{enc_prefix}id_embedding_mapping.0.weight" in state:
        return layout, "v1.1"
    if f"{enc_prefix}body.0.weight" in state:
        return layout, "v1"
    if layout == "ip-adapter":
        raise PulidFormatError(_describe(path, "looks like a plain IP-Adapter (no PuLID ID encoder)."))
    raise PulidFormatError(_describe(path, "has an ID encoder of unknown type (neither PuLID v1 nor v1.1)."))


def _build_encoder(version, enc_state, prefix, path, device, dtype):
    # Built on the meta device and filled by assignment: no random init of ~150M parameters to overwrite.
    with torch.device("meta"):
        encoder = ENCODERS[version]()
    expected = encoder.state_dict()
    missing = [prefix + k for k in expected if k not in enc_state]
    unexpected = [prefix + k for k in enc_state if k not in expected]
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} key(s): {_few(missing)}")
        if unexpected:
            problems.append(f"unexpected {len(unexpected)} key(s): {_few(unexpected)}")
        raise PulidFormatError(
            _describe(path, f"has a PuLID {version} encoder that does not match: {'; '.join(problems)}.")
        )
    for key, ref in expected.items():
        if enc_state[key].shape != ref.shape:
            raise PulidFormatError(
                _describe(
                    path,
                    f"has {prefix}{key} of shape {list(enc_state[key].shape)}, expected {list(ref.shape)} "
                    f"for PuLID {version}.",
                )
            )
    device = torch.device(device) if device is not None else torch.device("cpu")
    encoder.load_state_dict(
        {k: v.to(device=device, dtype=dtype) for k, v in enc_state.items()}, strict=True, assign=True
    )
    return encoder.eval().requires_grad_(False)


def _collect_kv(kv_state, prefix, pattern, path):
    pairs = [[None, None] for _ in SITES]
    unexpected = []
    for key, tensor in kv_state.items():
        match = pattern.fullmatch(key)
        if match is None or int(match.group(1)) not in SITE_INDEX_BY_N:
            unexpected.append(prefix + key)
            continue
        site_index = SITE_INDEX_BY_N[int(match.group(1))]
        site = SITES[site_index]
        expected = (site.width, CONTEXT_DIM)
        if tuple(tensor.shape) != expected:
            raise PulidFormatError(
                _describe(path, f"has {prefix}{key} of shape {list(tensor.shape)}, expected {list(expected)}.")
            )
        pairs[site_index][0 if match.group(2) == "k" else 1] = tensor
    if unexpected:
        raise PulidFormatError(_describe(path, f"has unexpected attention keys: {_few(unexpected)}."))
    k_name, v_name = ("id_to_k.weight", "id_to_v.weight") if prefix.startswith("id_") else ("to_k_ip.weight", "to_v_ip.weight")
    missing = [
        f"{prefix}{site.n}.{name}"
        for site, pair in zip(SITES, pairs)
        for name, w in ((k_name, pair[0]), (v_name, pair[1]))
        if w is None
    ]
    if missing:
        raise PulidFormatError(
            _describe(path, f"misses {len(missing)} of the 140 attention weights: {_few(missing)}.")
        )
    return [(k, v) for k, v in pairs]


def _few(names, limit=4):
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f" (+{len(names) - limit} more)" if len(names) > limit else "")


def _describe(path, problem):
    return f"PuLID model file {path} {problem} {SUPPORTED}"
