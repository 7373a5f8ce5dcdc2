"""An edit measured against the picture it was made from, inside and outside a mask.

A face fix (crop, resample, paste back) must change the face and nothing else. Two numbers say whether it did:
the largest per-pixel difference outside the mask (0 when every pixel there kept its value, which Paste Face
guarantees), and the CLIP preservation of the two pictures with the masked region filled grey in both, so the
intended change does not count against it. The region is every pixel where the mask is above 0, its feather
included: Paste Face blends wherever its mask is above 0. Likeness is read inside the mask: only faces whose box
centre lies where the mask is above 0.5 count, as Crop Face's `mask` restricts its candidates.
"""
from dataclasses import dataclass

import torch

from .regions import check_region

FILL = 0.5
"""The grey the masked region is filled with in both pictures before CLIP compares them."""


@dataclass(frozen=True)
class EditRegion:
    """A mask as the measures read it, one [H, W] plane per picture."""

    changed: torch.Tensor  # [B, H, W] bool: mask > 0, where the edit may change pixels
    faces: torch.Tensor  # [B, H, W] bool: mask > 0.5, where a face's box centre must lie to count


def edit_region(mask, images, name="mask"):
    """The EditRegion of an optional MASK ([H, W] or [1|B, H, W]) for an IMAGE batch, or None.

    No mask, or one with nothing above 0.5 (Load Image's empty 64x64 mask), is None: the whole picture is measured.
    A mask of another size, or with another count than 1 or the batch's, is `regions.check_region`'s error naming
    `name`.
    """
    faces = check_region(mask, images, name)
    if faces is None:
        return None
    planes = (mask[None] if mask.ndim == 2 else mask).cpu()
    return EditRegion(changed=(planes > 0).expand(faces.shape), faces=faces)


def fill_region(images, changed, value=FILL):
    """`images` [B|1, H, W, C] with the pixels of `changed` ([B, H, W] bool) set to `value`, as float32 on the CPU.

    One picture (a shared baseline) is filled with each picture's region: [B, H, W, C] out.
    """
    pixels = images.detach().cpu().float()
    pixels = pixels.expand(changed.shape[0], *pixels.shape[1:])
    return torch.where(changed[..., None], torch.tensor(value, dtype=pixels.dtype), pixels)


def largest_difference_outside(images, baselines, changed):
    """Per picture, the largest |image - baseline| (0..1, over pixels and channels) where `changed` is False; 0.0
    where the region covers the whole picture. baselines: one for all pictures, or one per picture."""
    pixels = images.detach().cpu().double()
    base = baselines.detach().cpu().double().expand(pixels.shape)
    difference = (pixels - base).abs().amax(dim=-1)
    outside = difference.masked_fill(changed, 0.0)
    return [float(v) for v in outside.flatten(1).amax(dim=1)]
