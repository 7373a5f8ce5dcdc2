"""ID embeddings: the cond/uncond token sets a PuLID model makes from one or more faces, and their files.

Encoding is the expensive, face-dependent half of PuLID; the tokens are small ([1,T,2048]), so they are
kept as float32 CPU tensors, can be saved once and reused with any SDXL model of the same PuLID version.
"""
import logging
import os
import weakref
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from .attention import project_sites
from .errors import EmbeddingMismatchError, PulidError, PulidFormatError
from .sites import CONTEXT_DIM, SITES

log = logging.getLogger(__name__)

FORMAT_TAG = "pulid-sdxl-id-embedding"
FORMAT_VERSION = "1"

MULTI_IMAGE_MODES = {
    # concat: the official v1 demo's "ID mix off": first face's 10 tokens, then the 5 face-embedding
    # tokens of every further face. mean: average of the per-face token sets.
    "v1": ("concat", "mean"),
    # stack: the official v1.1 pipeline: all faces go through one IDFormer pass.
    "v1.1": ("stack", "mean"),
}
AUTO = "auto"
AUTO_MODE = {"v1": "concat", "v1.1": "stack"}
"""What `AUTO` means per version: the official pipeline's rule."""
MULTI_IMAGE_CHOICES = (AUTO, *sorted({mode for modes in MULTI_IMAGE_MODES.values() for mode in modes}))
"""Every `multi_image` value `encode_identity` takes, in the order Encode Face lists them."""

# Zero-input uncond tokens per encoder module and input shape/device/dtype. Without noise they do not
# depend on the face, so re-encoding (another photo, another face choice) skips that encoder pass.
_ZERO_UNCOND = weakref.WeakKeyDictionary()


class KVCacheInfo(NamedTuple):
    """What one IDEmbedding holds of projected ID keys/values (`IDEmbedding.cache_info`).

    The K/V are the memory PuLID adds while sampling and what re-applying with other settings reuses, so
    benchmarks and tests read them here instead of from the cache's own layout.
    """

    entries: int
    """K/V sets held: one per PuLID model, device and dtype they were projected for."""
    models: int
    """PuLID models those sets belong to (one whose model is gone counts until the next projection drops it)."""
    per_device_dtype: dict
    """(device string, torch dtype) -> K/V sets held there."""
    nbytes: int
    """Memory the sets take, each storage counted once (the sites' K/V are views of shared stores)."""


@dataclass
class IDEmbedding:
    """cond/uncond ID tokens [1,T,2048] of one identity, with where they came from."""

    cond: torch.Tensor
    uncond: torch.Tensor
    version: str
    metadata: dict = field(default_factory=dict)
    projections: dict = field(default_factory=dict, repr=False, compare=False)
    """(id of the PuLID model, device, dtype) -> (weak reference to the model, per-site keys/values)."""

    @property
    def num_tokens(self):
        return self.cond.shape[1]

    def site_keys_values(self, model, device, dtype):
        """Per site (keys, values) of [uncond; cond] through `model`'s K/V weights, in `head_layout`.

        Projected once per PuLID model, device and dtype and kept here, so every patch made from these
        embeddings (another weight, method, window or mask) reuses them; the zero tokens are a count
        (`IDHeads`), not part of the projection. The K/V go with the embeddings; an entry whose model
        is gone is dropped on the next call, so a replaced model's K/V do not stay behind.
        """
        for key in [k for k, (ref, _) in self.projections.items() if ref() is None]:
            del self.projections[key]
        key = (id(model), str(device), dtype)
        entry = self.projections.get(key)
        if entry is None or entry[0]() is not model:
            tokens = torch.cat([self.uncond, self.cond])
            kv = project_sites(tokens, model.kv_weights, [site.heads for site in SITES], device, dtype)
            entry = self.projections[key] = (weakref.ref(model), kv)
        return entry[1]

    def cache_info(self):
        """How many projected K/V sets these embeddings hold, where, and their size: a KVCacheInfo."""
        per_device_dtype = {}
        storages = {}
        for (_, device, dtype), (_, kv) in self.projections.items():
            per_device_dtype[(device, dtype)] = per_device_dtype.get((device, dtype), 0) + 1
            for tensor in (t for pair in kv for t in pair):
                storage = tensor.untyped_storage()
                storages[(storage.device, storage.data_ptr())] = storage.nbytes()
        return KVCacheInfo(entries=len(self.projections), models=len({key[0] for key in self.projections}),
                           per_device_dtype=per_device_dtype, nbytes=sum(storages.values()))

    def save(self, path):
        """Write a .safetensors file that `IDEmbedding.load` (and nothing else) recognises."""
        from safetensors.torch import save_file

        meta = {str(k): str(v) for k, v in self.metadata.items()}
        meta.update(
            format=FORMAT_TAG,
            format_version=FORMAT_VERSION,
            pulid_version=self.version,
            num_tokens=str(self.num_tokens),
        )
        tensors = {
            "cond": self.cond.detach().to("cpu", torch.float32).contiguous(),
            "uncond": self.uncond.detach().to("cpu", torch.float32).contiguous(),
        }
        save_file(tensors, os.fspath(path), metadata=meta)

    @classmethod
    def load(cls, path, expected_version=None):
        """Read a saved embedding; `expected_version` ("v1"/"v1.1") is the PuLID model it will drive."""
        from safetensors import safe_open

        path = os.fspath(path)
        not_ours = (
            f"{path} is not a PuLID ID embedding file (made by this pack's Save PuLID Embeddings (SDXL) node)."
        )
        if not os.path.isfile(path):
            raise PulidFormatError(f"{not_ours} No such file.")
        try:
            with safe_open(path, framework="pt", device="cpu") as f:
                meta = dict(f.metadata() or {})
                keys = set(f.keys())
                tensors = {k: f.get_tensor(k) for k in keys & {"cond", "uncond"}}
        except Exception as exc:  # safetensors raises its own error types for foreign or cut-off files
            raise PulidFormatError(f"{not_ours} ({exc})") from None
        if meta.get("format") != FORMAT_TAG or keys != {"cond", "uncond"}:
            raise PulidFormatError(not_ours)
        version = meta.get("pulid_version")
        cond, uncond = tensors["cond"], tensors["uncond"]
        if (
            version not in MULTI_IMAGE_MODES
            or cond.ndim != 3
            or cond.shape[0] != 1
            or cond.shape[2] != CONTEXT_DIM
            or cond.shape != uncond.shape
            or meta.get("num_tokens") != str(cond.shape[1])
        ):
            raise PulidFormatError(f"{path} is a damaged PuLID ID embedding file: re-encode the face and save again.")
        cond, uncond = cond.float(), uncond.float()
        # NaN or inf tokens would turn every attention output NaN: the sampler would return an all-NaN latent.
        # numpy's isfinite over the freshly read CPU tensors is the cheapest exact check (torch's reductions cost
        # about four times as much here, most of it starting their thread pool): loading stays sub-millisecond.
        if not (np.isfinite(cond.numpy()).all() and np.isfinite(uncond.numpy()).all()):
            raise PulidFormatError(
                f"PuLID embeddings file {path} holds NaN or infinite tokens, which would make the image all NaN. "
                f"Encode the face again and save it again with Save PuLID Embeddings.")
        if expected_version is not None and version != expected_version:
            raise EmbeddingMismatchError(
                f"{path}: embeds made with PuLID {version} cannot drive a {expected_version} model: "
                f"re-encode the face with the PuLID {expected_version} model, or load a PuLID {version} model."
            )
        for key in ("format", "format_version", "pulid_version", "num_tokens"):
            meta.pop(key, None)
        return cls(cond=cond, uncond=uncond, version=version, metadata=meta)


def encode_identity(model, id_conds, vit_hiddens, multi_image=AUTO, noise=0.0, seed=0):
    """Run the model's ID encoder on one or more faces and return their cond/uncond tokens.

    id_conds: per face [1,1280]; vit_hiddens: per face 5 tensors [1,577,1024] (from the face pipeline).
    multi_image: "auto" (concat for v1, stack for v1.1), "concat" (v1), "stack" (v1.1) or "mean".
    Uncond tokens are the encoder applied to all-zero inputs, or to uniform noise in [0, noise) drawn
    from a CPU generator seeded with `seed` (id_cond first, then the five hidden layers, face by face).
    """
    version = model.version
    if multi_image == AUTO:
        multi_image = AUTO_MODE[version]
    if multi_image not in MULTI_IMAGE_MODES[version]:
        raise PulidError(
            f"Multi-image mode {multi_image!r} does not fit a PuLID {version} model: "
            f"use {' or '.join(MULTI_IMAGE_MODES[version])} (or {AUTO})."
        )
    if not id_conds or len(id_conds) != len(vit_hiddens):
        raise PulidError(
            f"Need one face embedding and one set of hidden states per image; got {len(id_conds)} and "
            f"{len(vit_hiddens)}."
        )
    if noise < 0:
        raise PulidError(f"Noise must be 0 or more, got {noise}.")

    encoder = model.encoder
    param = next(encoder.parameters())
    generator = torch.Generator(device="cpu").manual_seed(int(seed))

    def to_model(x):
        return x.to(device=param.device, dtype=param.dtype)

    def blank(like):
        if noise == 0:
            return torch.zeros(like.shape, device=param.device, dtype=param.dtype)
        return to_model(torch.rand(like.shape, generator=generator, dtype=torch.float32) * noise)

    def encode(id_cond, hidden):
        return encoder(to_model(id_cond), [to_model(h) for h in hidden]).float().cpu()

    def encode_blank(id_cond, hidden):
        if noise == 0:
            cache = _ZERO_UNCOND.setdefault(encoder, {})
            key = (tuple(id_cond.shape), tuple(tuple(h.shape) for h in hidden), param.device, param.dtype)
            if key not in cache:
                cache[key] = encoder(blank(id_cond), [blank(h) for h in hidden]).float().cpu()
            return cache[key]
        blank_cond = blank(id_cond)
        return encoder(blank_cond, [blank(h) for h in hidden]).float().cpu()

    with torch.inference_mode():
        if multi_image == "stack":
            cond = encode(torch.stack([c.reshape(1, -1) for c in id_conds], dim=1),
                          [torch.cat(layer, dim=1) for layer in zip(*vit_hiddens)])
            uncond = encode_blank(id_conds[0], vit_hiddens[0])
        else:
            conds = [encode(c, h) for c, h in zip(id_conds, vit_hiddens)]
            unconds = [encode_blank(c, h) for c, h in zip(id_conds, vit_hiddens)]
            if multi_image == "mean":
                cond = torch.stack(conds).mean(dim=0)
                uncond = torch.stack(unconds).mean(dim=0)
            else:  # concat
                cond = torch.cat([conds[0]] + [c[:, :5] for c in conds[1:]], dim=1)
                uncond = torch.cat([unconds[0]] + [u[:, :5] for u in unconds[1:]], dim=1)

    metadata = {
        "multi_image": multi_image,
        "num_images": str(len(id_conds)),
        "noise": repr(float(noise)),
        "seed": str(int(seed)),
        "source_model": os.path.basename(getattr(model, "path", "") or ""),
    }
    log.debug("Encoded %d face(s) with PuLID %s (%s): %d tokens", len(id_conds), version, multi_image, cond.shape[1])
    return IDEmbedding(cond=cond, uncond=uncond, version=version, metadata=metadata)


def check_embedding(model, embeds):
    """Raise EmbeddingMismatchError unless `embeds` was made by a model of the same version."""
    if embeds.version != model.version:
        raise EmbeddingMismatchError(
            f"These face embeddings were made with a PuLID {embeds.version} model but are applied with "
            f"PuLID {model.version} ({model.path}). Encode the face again with the {model.version} "
            f"model, or load the {embeds.version} model in the Apply node.")
    if embeds.cond.shape[-1] != model.kv_weights[0][0].shape[1]:
        raise EmbeddingMismatchError(
            f"Face embeddings have {embeds.cond.shape[-1]} features per token but the PuLID model "
            f"{model.path} expects {model.kv_weights[0][0].shape[1]}; encode the face again.")
