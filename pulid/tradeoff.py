"""The two other axes of PuLID's trade-off: prompt adherence and preservation of the base image.

Face similarity (``similarity.py``) says how much of the identity came through; raising the ID weight buys
it at the cost of the prompt and of the picture the model would have made without PuLID. These measures put
numbers on that cost, the way the PuLID paper and the CLIP literature do:

- prompt adherence (CLIP-T): 100 × the cosine between the image's and the prompt's EVA02-CLIP embeddings;
- preservation: the cosine between the image's and a baseline's (same seed, PuLID off) CLIP image embeddings.

Both use the EVA02-CLIP-L model PuLID already has: the vision tower loaded for the face features and the text
tower beside it in the same file (``clip_text.py``). The whole image is scored, preprocessed as CLIP was
trained (shorter side resized, centre crop), not the aligned face the ID encoder sees.
"""
import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .clip_text import CONTEXT_LENGTH, ClipText, PromptTokens, tokenize
from .errors import PulidError
from .eva_clip import EvaClipVision, preprocess
from .face import IMAGE_RANGE_SLACK

logger = logging.getLogger(__name__)

BATCH = 8
"""Images per vision-tower call: bounds memory on large batches at no cost in speed."""


@dataclass
class Clip:
    """Both EVA02-CLIP towers: ``vision`` from load_eva_clip, ``text`` from load_clip_text."""

    vision: EvaClipVision
    text: ClipText


def prompt_notes(prompts, context_length=CONTEXT_LENGTH) -> list[PromptTokens]:
    """What CLIP reads of each prompt (``.note`` says "truncated: 77 of N tokens" for a long one)."""
    return tokenize(prompts, context_length)[1]


def image_embeddings(vision, images) -> torch.Tensor:
    """Unit-length projected EVA02-CLIP embeddings [N, D] (float32, CPU) of whole images.

    images: a batch (list of HxWx3 arrays or tensors, or one [N, H, W, 3] array/tensor: float 0..1 or uint8).
    Each image is preprocessed on its own, as CLIP was trained: shorter side to the tower's size (bicubic,
    antialiased, like torchvision's Resize on tensors), centre crop, EVA mean/std, so images of different
    sizes can share a batch.
    """
    return _embed(vision, _as_batch(images, "images"), "images")


def prompt_adherence(clip, images, prompts, embeddings=None) -> list[float]:
    """CLIP-T of each image: 100 × cosine(image embedding, prompt embedding).

    prompts: one prompt for all images, or one per image. ``embeddings``: image_embeddings(clip.vision, images)
    when the caller has them already (the vision tower is then not run again).
    """
    count = len(embeddings) if embeddings is not None else len(_as_batch(images, "images"))
    if not count:
        raise PulidError("`images` is empty: connect the images to score.")
    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not prompts:
        raise PulidError("`prompt` is empty: prompt adherence needs the prompt the images were made from.")
    if len(prompts) not in (1, count):
        raise PulidError(f"`prompt` has {len(prompts)} prompts for {count} images: give one prompt for all "
                         f"images or one per image.")
    unique = list(dict.fromkeys(prompts))
    text, _ = clip.text.encode(unique)  # checks the prompts before the images are encoded
    if embeddings is None:
        embeddings = image_embeddings(clip.vision, images)
    rows = [unique.index(p) for p in (prompts * count if len(prompts) == 1 else prompts)]
    cosines = (embeddings.double() * text.double()[rows]).sum(-1)
    return [100.0 * float(c) for c in cosines]


def preservation(clip, images, baselines, embeddings=None, baseline_embeddings=None) -> list[float]:
    """Cosine between each image's CLIP embedding and its baseline's (the same seed without PuLID).

    baselines: one image for all, or one per image; their size may differ from the images' (each is
    preprocessed on its own; a different aspect ratio crops differently, so use the same size where possible).
    ``embeddings`` / ``baseline_embeddings``: image_embeddings of either side when the caller has them already
    (a sweep scores each baseline once, however many PuLID images share it); ``baselines`` is then unused.
    """
    if embeddings is None:
        embeddings = image_embeddings(clip.vision, images)
    if baseline_embeddings is None:
        base = _as_batch(baselines, "baseline")
        if base:  # counted before the vision tower runs; an empty batch is _embed's error
            _check_baseline_count(len(base), len(embeddings))
        baseline_embeddings = _embed(clip.vision, base, "baseline")
    _check_baseline_count(len(baseline_embeddings), len(embeddings))
    cosines = (embeddings.double() * baseline_embeddings.double()).sum(-1)
    return [float(c) for c in cosines]


def _check_baseline_count(baselines, images):
    if baselines not in (1, images):
        raise PulidError(f"`baseline` has {baselines} images for {images} images: give one baseline for all images "
                         f"or one per image (the same seeds with PuLID off).")


def _embed(vision, batch, name):
    if not batch:
        raise PulidError(f"`{name}` is empty: connect the images to score." if name == "images" else
                         f"`{name}` is empty: connect the images made with PuLID off.")
    param = next(vision.parameters())
    size = vision.image_size
    pixels = [_clip_pixels(_to_tensor(image, name, index), size, param.device) for index, image in enumerate(batch)]
    out = []
    with torch.no_grad():
        for start in range(0, len(pixels), BATCH):
            chunk = preprocess(torch.cat(pixels[start:start + BATCH]), size).to(param.dtype)
            pooled, _ = vision(chunk)
            out.append(F.normalize(pooled.float(), dim=-1).cpu())
    return torch.cat(out)


def _as_batch(images, name):
    """A list of single images from a list/tuple, a [N, H, W, C] array/tensor, or one HxWxC image."""
    if images is None:
        raise PulidError(f"`{name}` is missing: connect an image batch.")
    if isinstance(images, (torch.Tensor, np.ndarray)):
        if images.ndim == 4:
            return list(images)
        if images.ndim == 3 and images.shape[-1] in (3, 4):
            return [images]
        raise PulidError(f"`{name}` has shape {tuple(images.shape)}; expected a batch of images "
                         f"[count, height, width, 3].")
    try:
        return list(images)
    except TypeError:
        raise PulidError(f"`{name}` must be an image batch, got {type(images).__name__}.") from None


def _to_tensor(image, name, index):
    """HxWx3 RGB float32 tensor in [0, 1] (uint8 scaled, gray repeated, alpha dropped)."""
    if not isinstance(image, (torch.Tensor, np.ndarray)):
        kind = type(image).__name__
        try:
            image = np.asarray(image)
        except Exception:
            image = None
        if image is None or image.dtype.kind not in "biuf":
            raise PulidError(f"`{name}` {index} is a {kind}, not an image.") from None
    if isinstance(image, np.ndarray) and image.dtype.kind not in "biuf":
        raise PulidError(f"`{name}` {index} has {image.dtype} pixels; expected float 0..1 or uint8.")
    is_uint8 = image.dtype in (np.uint8, torch.uint8)
    tensor = torch.as_tensor(np.asarray(image) if isinstance(image, np.ndarray) else image.detach()).cpu()
    if tensor.ndim == 2:
        tensor = tensor[:, :, None]
    if tensor.ndim != 3 or tensor.shape[2] not in (1, 3, 4) or min(tensor.shape[:2]) < 1:
        raise PulidError(f"`{name}` {index} has shape {tuple(tensor.shape)}; expected height × width × 3 (RGB).")
    if not (tensor.is_floating_point() or is_uint8):
        dtype = str(tensor.dtype).replace("torch.", "")
        raise PulidError(f"`{name}` {index} has {dtype} pixels; expected float 0..1 or uint8.")
    tensor = tensor.float() / 255.0 if is_uint8 else tensor.float()
    if not torch.isfinite(tensor).all():
        raise PulidError(f"`{name}` {index} contains NaN or infinite pixel values; check the node that made it.")
    if not is_uint8 and tensor.numel() and tensor.max() > IMAGE_RANGE_SLACK:
        raise PulidError(f"`{name}` {index} has pixel values up to {tensor.max():.0f}: it looks like a 0..255 "
                         f"image, but ComfyUI images are 0..1.")
    if tensor.shape[2] == 1:
        tensor = tensor.expand(-1, -1, 3)
    return tensor[:, :, :3]


def _clip_pixels(image, size, device):
    """[1, 3, size, size] in [0, 1]: shorter side to ``size`` (bicubic, antialiased), centre crop.

    Sizes and crop offsets are computed as torchvision's Resize(size) and CenterCrop(size) compute them;
    values are clamped to [0, 1] after the bicubic resize, as the 8-bit pipeline CLIP was trained with does.
    """
    pixels = image.permute(2, 0, 1)[None].to(device)
    height, width = pixels.shape[-2:]
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    new = (new_long, size) if width <= height else (size, new_long)
    if (height, width) != new:
        pixels = F.interpolate(pixels, size=new, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    top = int(round((new[0] - size) / 2.0))
    left = int(round((new[1] - size) / 2.0))
    return pixels[:, :, top:top + size, left:left + size]
