"""Crop faces to a working size and paste the detailed crops back: the two ends of a face detail pass.

SDXL cannot draw a likeness into a 100 px face, so the face is cropped square with context, resized to the size
SDXL works at, resampled by any graph, and pasted back. The paste composites through the feathered mask with
`torch.where`, not a blend over the whole picture: every pixel where the mask is 0 keeps its exact bits, so a
detail pass never shifts the colours or the noise of the rest of the picture.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import PulidError
from .image_input import checked_batch
from .regions import Box, MaskShape, crop_box, face_mask


NATIVE_SIZE = 1024
"""SDXL's native side: the default working size of a detail pass."""
WORKING_SIZES = (NATIVE_SIZE // 4, 2 * NATIVE_SIZE)
"""The working sizes Crop Face offers: from a quarter of SDXL's native side (quick tests) to twice it."""


@dataclass(frozen=True)
class CropSettings:
    """How Crop Face cuts: box side = the faces' long side x `context`, resized to `working_size`²."""

    context: float = 2.0
    working_size: int = NATIVE_SIZE
    mask: MaskShape = MaskShape(grow=1.3, shape="ellipse", feather=24)

    def __post_init__(self):
        if self.working_size < 8 or self.working_size % 8:
            raise PulidError(f"`working_size` must be a multiple of 8 (SDXL's latent step), not {self.working_size}.")


@dataclass(frozen=True)
class FaceCrop:
    """Where one picture's crop came from: its box, the picture's size, and the feathered mask in picture pixels
    (zero outside the box: only the box is pasted back)."""

    box: Box
    height: int
    width: int
    mask: torch.Tensor  # [H, W] float32


def resize(pixels, height, width, mode="bicubic"):
    """[B, h, w, C] float -> [B, height, width, C]: antialiased when shrinking, clamped to 0..1 (bicubic
    overshoots at edges)."""
    if tuple(pixels.shape[1:3]) == (height, width):
        return pixels
    channels_first = pixels.permute(0, 3, 1, 2).float()
    out = F.interpolate(channels_first, size=(height, width), mode=mode, align_corners=False, antialias=True)
    return out.clamp(0.0, 1.0).permute(0, 2, 3, 1)


def crop_faces(images, faces_per_image, settings=CropSettings()):
    """(crops [B, S, S, C], crop-space masks [B, S, S], geometry: a FaceCrop per picture), S = working size."""
    checked_batch(images)
    batch, height, width = images.shape[:3]
    if len(faces_per_image) != batch:
        raise PulidError(f"{len(faces_per_image)} face lists for {batch} pictures.")
    size = settings.working_size
    crops, masks, geometry = [], [], []
    for image, faces in zip(images, faces_per_image):
        box = crop_box(faces, height, width, settings.context)
        rows, cols = box.slices
        inside = torch.zeros(height, width)
        inside[rows, cols] = 1.0
        mask = face_mask(faces, height, width, settings.mask) * inside
        crops.append(resize(image[None, rows, cols], size, size)[0])
        masks.append(resize(mask[rows, cols, None][None], size, size, mode="bilinear")[0, :, :, 0])
        geometry.append(FaceCrop(box, height, width, mask))
    return torch.stack(crops), torch.stack(masks).to(images.device), geometry


def paste_faces(images, crops, geometry):
    """`images` with each crop resized back to its box and composited through its feathered mask.

    Where the mask is 0 the result is the input, bit for bit (`torch.where`); where it is 1, the crop.
    """
    checked_batch(images)
    checked_batch(crops, "crop")
    if not isinstance(geometry, (list, tuple)) or not all(isinstance(g, FaceCrop) for g in geometry):
        raise PulidError("`geometry` must come from PuLID Crop Face (SDXL).")
    batch, height, width, channels = images.shape
    if len(geometry) != batch:
        raise PulidError(f"`geometry` was made from a batch of {len(geometry)} pictures, but `images` holds {batch}: "
                         f"paste into the same pictures that were cropped.")
    if crops.shape[0] != batch:
        raise PulidError(f"`crop` holds {crops.shape[0]} pictures for {batch} in `images`: keep the batch of the "
                         f"crop through the detail pass (one crop per picture).")
    if crops.shape[3] != channels:
        raise PulidError(f"`crop` has {crops.shape[3]} channels but `images` has {channels}.")
    out = images.clone()
    for index, (crop, place) in enumerate(zip(crops, geometry)):
        if (place.height, place.width) != (height, width):
            raise PulidError(f"`images` picture {index} is {width}x{height}, but `geometry` was cut from a "
                             f"{place.width}x{place.height} picture: paste into the pictures that were cropped.")
        rows, cols = place.box.slices
        region = images[index, rows, cols]
        patch = resize(crop[None].to(images.device), place.box.height, place.box.width)[0].to(images.dtype)
        weight = place.mask[rows, cols, None].to(device=images.device, dtype=images.dtype)
        out[index, rows, cols] = torch.where(weight > 0, region * (1 - weight) + patch * weight, region)
    return out
