"""Loading PuLID-SDXL checkpoints: format detection, strict key/shape checks, safe unpickling.

Three layouts are accepted, in fp16, bf16 or fp32, detected from the keys (never from the file name):
  official     `pulid_v1.bin` / `pulid_v1.1.safetensors`: `id_adapter.*` + `id_adapter_attn_layers.<n>.id_to_{k,v}.weight`
  ip-adapter   `ip-adapter_pulid_sdxl_fp16.safetensors` and converted v1.1 files: `image_proj.*` +
               `ip_adapter.<n>.to_{k,v}_ip.weight` (also nested {"image_proj": ..., "ip_adapter": ...} in a .bin)
The encoder version comes from the encoder keys (v1 MLP `body.*`, v1.1 IDFormer `id_embedding_mapping.*`).
Torch pickles are only ever read with `weights_only=True`: a well-formed file that needs code to load is
refused; a cut or garbled one is "truncated or corrupt" (its pickles are checked for completeness first).
"""
import logging
import os
import pickle
import pickletools
import re
import struct
from dataclasses import dataclass

import torch
from torch import nn

from .encoder_v1 import IDEncoder
from .errors import ModelFileError, PulidFormatError
from .idformer import IDFormer
from .sites import CONTEXT_DIM, SITE_INDEX_BY_N, SITES

log = logging.getLogger(__name__)

SUPPORTED = (
    "Supported: pulid_v1.bin and pulid_v1.1.safetensors (huggingface.co/guozinan/PuLID), "
    "ip-adapter_pulid_sdxl_fp16.safetensors, or a v1.1 file converted to that IP-Adapter layout."
)

ENCODERS = {"v1": IDEncoder, "v1.1": IDFormer}

ZIP_MAGIC = b"PK\x03\x04"
LEGACY_PICKLES = 5
"""torch's legacy format: magic number, protocol version, system info, the saved object, storage keys."""

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
    """Flat {key: tensor} of a safetensors file or torch pickle; every failure is a user-facing error."""
    if not os.path.exists(path):
        raise ModelFileError(f"PuLID model file not found: {path}. {SUPPORTED} Put it in models/pulid.")
    if os.path.isdir(path):
        raise PulidFormatError(_describe(path, "is a folder, not a model file."))
    size = os.path.getsize(path)
    if size == 0:
        raise PulidFormatError(_describe(path, "is empty (0 bytes): the download probably failed; download it again."))
    with open(path, "rb") as f:
        head = f.read(9)
    if size < len(ZIP_MAGIC) and ZIP_MAGIC.startswith(head):
        raise PulidFormatError(_describe(path, f"is truncated or corrupt (only {size} byte(s)); download it again."))
    if head[:2] == b"PK" or head[:1] == b"\x80":
        state = _read_torch(path, zipped=head[:2] == b"PK")
    elif len(head) == 9 and head[8:9] == b"{" and struct.unpack("<Q", head[:8])[0] < size:
        state = _read_safetensors(path)
    elif len(head) == 9 and head[8:9] == b"{":
        raise PulidFormatError(_describe(path, "is truncated or corrupt (safetensors header cut off); download it again."))
    else:
        raise PulidFormatError(_describe(path, "is neither a .safetensors file nor a PyTorch checkpoint."))
    return _flatten(state, path)


def _read_safetensors(path):
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            return {key: f.get_tensor(key) for key in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for cut-off or corrupt files
        raise PulidFormatError(
            _describe(path, f"is truncated or corrupt ({exc}); download it again.")
        ) from exc


def _read_torch(path, zipped):
    if not zipped:
        _check_pickles(path)
    try:
        if path.endswith(".safetensors"):
            # A torch pickle misnamed .safetensors: pass a file object, since newer torch.load hands such
            # paths to safetensors; mmap needs a path, so this rare case reads the file into memory.
            with open(path, "rb") as f:
                return torch.load(f, map_location="cpu", weights_only=True)
        return torch.load(path, map_location="cpu", weights_only=True, mmap=zipped)
    except pickle.UnpicklingError as exc:
        if _names_code(exc):
            raise PulidFormatError(
                _describe(
                    path,
                    "was refused: loading it would run code stored in the file, which is never done here. "
                    "Use the official file or a .safetensors version.",
                )
            ) from None
        raise PulidFormatError(_describe(path, f"is truncated or corrupt ({_reason(exc)}); download it again.")) \
            from None
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError, TypeError, struct.error) as exc:
        # A cut legacy (non-zip) pickle fails inside torch's reader with whatever it hit first.
        raise PulidFormatError(_describe(path, f"is truncated or corrupt ({_reason(exc)}); download it again.")) \
            from None


def _check_pickles(path):
    """Raise "truncated or corrupt" unless the pickles at the start of a legacy (non-zip) file are complete.

    The weights-only loader judges globals as it meets them, so a pickle cut in the middle of a global's
    name ("torch._ut") is refused as code. Walking the opcodes first (pickletools builds and runs nothing)
    leaves "refused" to well-formed pickles that name code. A legacy torch file is LEGACY_PICKLES pickles
    and then raw storage bytes (torch checks those itself); a plain pickle file is one pickle.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        stream = _Capped(f, size)
        for index in range(LEGACY_PICKLES):
            start = f.tell()
            if start == size:
                return
            try:
                for _ in pickletools.genops(stream):  # stops after STOP; raises on a cut or unknown opcode
                    pass
            except ValueError as exc:
                raise PulidFormatError(_describe(
                    path, f"is truncated or corrupt (pickle {index + 1} from byte {start}: {exc}); download it again."
                )) from None


class _Capped:
    """A file whose reads never ask for more than is left, so a length field claiming terabytes in a damaged
    pickle is a short read (ValueError in pickletools), not a huge allocation."""

    def __init__(self, f, size):
        self.f, self.size = f, size

    def read(self, n=-1):
        left = self.size - self.f.tell()
        return self.f.read(left if n < 0 else min(n, left))

    def readline(self):
        return self.f.readline()

    def tell(self):
        return self.f.tell()


def _names_code(exc):
    """Whether a weights-only failure is an unsupported global (code the file would run): every weights-only
    failure mentions "weights only", only this kind names a GLOBAL; the rest is a damaged pickle."""
    return "unsupported global" in str(exc).lower()


def _reason(exc):
    """The useful line of an error (torch's weights-only messages wrap it in advice that does not apply)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    advice = ("weights only load failed", "check the documentation", "weightsunpickler error", "please file an issue")
    useful = [line for line in lines if not line.lower().startswith(advice)]
    return (useful or lines or [type(exc).__name__])[0][:200] or type(exc).__name__


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
