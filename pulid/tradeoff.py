"""The two other axes of PuLID's trade-off: prompt adherence and preservation of the base image.

Face similarity (``similarity.py``) says how much of the identity came through; raising the ID weight buys
it at the cost of the prompt and of the picture the model would have made without PuLID. These measures put
numbers on that cost, the way the PuLID paper and the CLIP literature do:

- prompt adherence (CLIP-T): 100 × the cosine between the image's and the prompt's EVA02-CLIP embeddings;
- preservation: the cosine between the image's and a baseline's (same seed, PuLID off) CLIP image embeddings.

Both use the EVA02-CLIP-L model PuLID already has: the vision tower loaded for the face features and the text
tower beside it in the same file (``clip_text.py``). The whole image is scored, preprocessed as CLIP was
trained (shorter side resized, centre crop), not the aligned face the ID encoder sees. ``load_clip`` reads the
file once for both towers. ``scoring.score_batch`` puts these together with face similarity for a batch.
"""
import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .clip_text import ClipText, empty_prompt, prompt_notes, text_tower
from .errors import PulidError
from .eva_clip import EvaClipVision, preprocess, read_checkpoint, vision_tower
from .image_input import checked_pixels

logger = logging.getLogger(__name__)

BATCH = 8
"""Images per vision-tower call: bounds memory on large batches at no cost in speed."""


# prompt_notes lives beside the tokenizer (clip_text); callers that score find it here with the measures.
__all__ = ["BATCH", "Clip", "load_clip", "image_embeddings", "prompt_adherence", "preservation",
           "preservation_from_embeddings", "prompt_notes"]


@dataclass
class Clip:
    """Both EVA02-CLIP towers: ``vision`` (an EvaClipVision) and ``text`` (a ClipText); ``load_clip`` gives both."""

    vision: EvaClipVision
    text: ClipText


def load_clip(path, device=None, dtype=None, vision=None) -> Clip:
    """Both towers of the EVA-CLIP file at ``path`` from one read of it (the loaders one after the other read it twice).

    ``vision``: a vision tower already loaded from that file (a FaceEncoder's ``eva``), used as it is; only the
    text tower is then built, where and as the vision tower runs unless ``device``/``dtype`` say otherwise.
    Errors are load_eva_clip's and load_clip_text's (a vision-only file names the file that has the text tower).
    """
    state = read_checkpoint(path)
    if vision is None:
        vision = vision_tower(state, path, device, dtype)
    else:
        weight = next(vision.parameters())
        device, dtype = device or weight.device, dtype or weight.dtype
    return Clip(vision=vision, text=text_tower(state, path, device, dtype))


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
        raise empty_prompt()
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
    ``embeddings`` / ``baseline_embeddings``: image_embeddings of either side when the caller has them already;
    with both, ``preservation_from_embeddings`` says the same without the unused arguments.
    """
    if embeddings is None:
        embeddings = image_embeddings(clip.vision, images)
    if baseline_embeddings is None:
        base = _as_batch(baselines, "baseline")
        if base:  # counted before the vision tower runs; an empty batch is _embed's error
            _check_baseline_count(len(base), len(embeddings))
        baseline_embeddings = _embed(clip.vision, base, "baseline")
    return preservation_from_embeddings(embeddings, baseline_embeddings)


def preservation_from_embeddings(embeddings, baseline_embeddings) -> list[float]:
    """Preservation of images whose image_embeddings are [N, D] against their baselines' ([1, D] for one
    baseline shared by all, or [N, D]): the cosine of each pair (the embeddings are unit length), in float64.

    A sweep embeds each baseline once and compares it with every PuLID image made from its seed.
    """
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
    pixels = [_clip_pixels(_to_float(image, name, index), size, param.device) for index, image in enumerate(batch)]
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


def _to_float(image, name, index):
    """HxWx3 RGB float32 tensor in [0, 1] (uint8 scaled) of a checked image."""
    pixels = checked_pixels(image, f"`{name}` {index}")
    return pixels.float() / 255.0 if pixels.dtype == torch.uint8 else pixels


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
