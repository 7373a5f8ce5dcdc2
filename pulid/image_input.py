"""The one check of an image a caller hands the library (a ComfyUI IMAGE row, a numpy photo, a torch tensor).

Face encoding, face similarity, the chart and the CLIP measures all take "an image" from outside; each reads it
differently afterwards (uint8 for insightface, float 0..1 for CLIP), but what makes it unusable is the same,
and so is what the user is told: not an image at all, the wrong shape, pixels of a type with no agreed range,
NaN, or a float image on the 0..255 scale (a node that forgot to divide by 255; it would be read as white).
"""
import numpy as np
import torch

from .errors import PulidError

IMAGE_RANGE_SLACK = 1.5
"""Float images are 0..1; a little overshoot (upscalers, sharpening) is clipped, a 0..255 image is an error."""


def checked_pixels(image, which) -> torch.Tensor:
    """HxWx3 RGB CPU tensor, uint8 kept as uint8 and any float as float32 (still 0..1, not clipped).

    Takes numpy arrays and torch tensors, HxW or HxWx1 gray (repeated), HxWx4 (alpha dropped), and a batch of
    one [1, H, W, C]. ``which`` names the image in every error ("Image 3", "`baseline` 0").
    """
    if not isinstance(image, (torch.Tensor, np.ndarray)):
        kind = type(image).__name__
        try:
            image = np.asarray(image)
        except Exception:
            image = None
        if image is None or image.dtype.kind not in "biuf":
            raise PulidError(f"{which} is a {kind}, not an image.") from None
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 and image.dtype.kind != "f":
            raise PulidError(f"{which} has {image.dtype} pixels; expected float 0..1 or uint8.")
        image = torch.from_numpy(np.ascontiguousarray(image))
    tensor = image.detach().cpu()
    if tensor.ndim == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim == 2:
        tensor = tensor[:, :, None]
    if tensor.ndim != 3 or tensor.shape[2] not in (1, 3, 4) or min(tensor.shape[:2]) < 1:
        raise PulidError(f"{which} has shape {tuple(tensor.shape)}; expected height × width × 3 (RGB; gray and "
                         f"RGBA are read too).")
    if tensor.dtype != torch.uint8:
        if not tensor.is_floating_point():
            raise PulidError(f"{which} has {str(tensor.dtype).replace('torch.', '')} pixels; expected float 0..1 "
                             f"or uint8.")
        tensor = _check_float_range(tensor.float(), which)
    if tensor.shape[2] == 1:
        return tensor.expand(-1, -1, 3)
    return tensor[:, :, :3]


def checked_batch(images, name="images") -> torch.Tensor:
    """A ComfyUI IMAGE batch [B, H, W, C] with at least one picture, its pixels checked as checked_pixels checks
    them; errors name the input (`name`)."""
    which = f"`{name}`"
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise PulidError(f"{which} must be an IMAGE batch [batch, height, width, channels], got {shape}.")
    if images.shape[0] == 0:
        raise PulidError(f"{which} is empty: the node before it produced no picture.")
    _check_float_range(images, which)
    return images


def _check_float_range(tensor, which):
    """`tensor` unless it holds NaN/inf or looks like a 0..255 picture in float (an error naming `which`)."""
    if not torch.isfinite(tensor).all():
        raise PulidError(f"{which} contains NaN or infinite pixel values; check the node that made it.")
    if tensor.numel() and tensor.max() > IMAGE_RANGE_SLACK:
        raise PulidError(f"{which} has pixel values up to {tensor.max():.0f}: it looks like a 0..255 image, but "
                         f"ComfyUI images are 0..1. The node that made it scaled it wrongly; divide it by 255 "
                         f"(or load the photo with Load Image).")
    return tensor


def to_rgb_uint8(image, image_index=None) -> np.ndarray:
    """HxWx3 RGB uint8 (what insightface, facexlib and the drawing code read) of any image checked_pixels takes.

    Float pixels are rounded from 0..1; the slight overshoot IMAGE_RANGE_SLACK allows is clipped.
    """
    which = "The image" if image_index is None else f"Image {image_index}"
    pixels = checked_pixels(image, which)
    if pixels.dtype != torch.uint8:
        pixels = (pixels * 255.0).round().clamp(0, 255).to(torch.uint8)
    return np.ascontiguousarray(pixels.numpy())
