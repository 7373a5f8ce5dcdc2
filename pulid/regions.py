"""Face regions of pictures that already exist: which faces, their feathered masks and square crop boxes.

The detail pass artists know from detailers (crop the face, resample it large, paste it back) needs three facts
per picture: where the chosen faces are, a mask that fades at its own edge (so the pasted pixels blend in and
every pixel outside it stays as it was) and one square box with context around them. Only the detector runs:
who the faces are (ArcFace, EVA-CLIP) does not matter here.

Detection size: the face encoder letterboxes every picture into 640x640, so a 100 px face of a 2048² group shot
reaches SCRFD at 31 px, where it starts to miss faces. Here each picture is detected once, at its long side
rounded up to a multiple of 32 and clamped to [640, 1280] (`DetectionSize`): up to 1280 px a picture is seen at
full resolution, beyond it the cost (SCRFD's is quadratic in the side) stays that of one 1280² pass; tiling
would find still smaller faces but costs several calls per picture and splits faces on the tile seams.
"""
import logging
import math
from dataclasses import dataclass

import torch

from .errors import FaceNotFoundError, PulidError
from .detector import FACE_CHOICES, order_faces, select_face

logger = logging.getLogger(__name__)

ALL_FACES = "all"
REGION_CHOICES = FACE_CHOICES + [ALL_FACES]
SHAPES = ("ellipse", "box")


@dataclass(frozen=True)
class DetectionSize:
    """The square side SCRFD sees a picture at: its long side rounded up to `step`, within [smallest, largest]."""

    smallest: int = 640  # the face encoder's size: a small picture is enlarged to it, as insightface does
    largest: int = 1280  # one 1280² pass costs 4x a 640² one; larger pictures are shrunk to it
    step: int = 32  # SCRFD's coarsest stride: its feature maps need sides divisible by it

    def for_picture(self, height, width):
        side = -(-max(height, width) // self.step) * self.step
        return min(max(side, self.smallest), self.largest)


DETECTION = DetectionSize()


@dataclass(frozen=True)
class MaskShape:
    """A face mask: the face box grown by `grow` around its centre, as an ellipse or a box, then feathered.

    `feather` px outside the grown shape the mask falls from 1 to 0 (smoothstep); beyond it the mask is exactly 0,
    so a paste through it leaves those pixels untouched.
    """

    grow: float = 1.3
    shape: str = "ellipse"
    feather: int = 16

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise PulidError(f"`shape` must be one of {', '.join(SHAPES)}, not {self.shape!r}.")
        if not self.grow > 0:
            raise PulidError(f"`grow` must be above 0 (1 is the face box itself), not {self.grow}.")
        if self.feather < 0:
            raise PulidError(f"`feather` must be 0 or more pixels, not {self.feather}.")


@dataclass(frozen=True)
class Box:
    """A pixel rectangle: left, top, width, height."""

    x: int
    y: int
    width: int
    height: int

    def as_core(self):
        """ComfyUI's BOUNDING_BOX form (0.33.0 and later)."""
        return {"x": self.x, "y": self.y, "width": self.width, "height": self.height}

    @property
    def slices(self):
        """(rows, columns) of the box in a [H, W] array."""
        return slice(self.y, self.y + self.height), slice(self.x, self.x + self.width)


# ---------------------------------------------------------------------------------- pictures
def check_region(mask, images, name="mask"):
    """An optional MASK [H, W] or [B|1, H, W] the size of `images`, as a [B, H, W] bool tensor or None.

    An all-zero mask restricts nothing: it is what Load Image gives (64x64) for a picture nothing was painted on.
    """
    if mask is None:
        return None
    if mask.ndim == 2:
        mask = mask[None]
    if not bool((mask > 0.5).any()):
        return None
    batch, height, width = images.shape[:3]
    if tuple(mask.shape[1:]) != (height, width):
        raise PulidError(f"`{name}` is {mask.shape[2]}x{mask.shape[1]} but the pictures are {width}x{height}: "
                         f"paint the mask on the same picture (e.g. Load Image's mask editor) or resize it.")
    if mask.shape[0] not in (1, batch):
        raise PulidError(f"`{name}` holds {mask.shape[0]} masks for {batch} pictures: give one mask, or one "
                         f"per picture.")
    return (mask > 0.5).expand(batch, height, width).cpu()


# ---------------------------------------------------------------------------------- detection
def _centre(face):
    return (face.bbox[0] + face.bbox[2]) / 2, (face.bbox[1] + face.bbox[3]) / 2


def centre_inside(region, face):
    """Whether the centre of `face`'s box lies on a True pixel of `region` ([H, W] bool)."""
    cx, cy = _centre(face)
    row, col = int(math.floor(cy)), int(math.floor(cx))
    return 0 <= row < region.shape[0] and 0 <= col < region.shape[1] and bool(region[row, col])


def detect_faces(detector, images, choice, *, skip_faceless=False, within=None, each=None, size=DETECTION):
    """The chosen faces of each picture: one `detector.detect` call per picture.

    choice: a `REGION_CHOICES` entry; "all" gives every face, left to right. within: a [B, H, W] bool tensor
    (`check_region`): only faces whose box centre lies in it are candidates. A picture without (enough) faces is
    a FaceNotFoundError naming its index, or [] with `skip_faceless`. each: called with the index before each
    picture (progress, interruption).
    """
    if choice not in REGION_CHOICES:
        raise PulidError(f"`face` must be one of: largest, left-to-right #1, ..., {ALL_FACES}; not {choice!r}.")
    found = []
    for index, image in enumerate(images):
        if each is not None:
            each(index)
        faces = detector.detect(image, index, size=size.for_picture(image.shape[0], image.shape[1]))
        if within is not None:
            faces = [face for face in faces if centre_inside(within[index], face)]
        try:
            if not faces:
                where = " inside the mask" if within is not None else ""
                raise FaceNotFoundError(f"No face found in picture {index} of `images`{where}. Use a picture where "
                                        f"the face is clearly visible, or turn on `skip_faceless`.", index)
            chosen = order_faces(faces, "left-to-right") if choice == ALL_FACES else [
                select_face(faces, choice, index)]
        except FaceNotFoundError:
            if not skip_faceless:
                raise
            logger.warning("PuLID: no face '%s' in picture %d, left as it is", choice, index)
            chosen = []
        found.append(chosen)
    return found


# ---------------------------------------------------------------------------------- masks
def _smoothstep(t):
    t = t.clamp(0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def face_mask(faces, height, width, shape=MaskShape()):
    """[H, W] float32 mask of `faces` (the max over them): 1 inside each grown shape, feathered, exactly 0 beyond.

    Distances are measured from pixel centres: for a box, the Euclidean distance to it; for an ellipse, the
    distance along the ray from its centre (exact for a circle, a little longer off-axis on a long ellipse).
    """
    ys = torch.arange(height, dtype=torch.float64)[:, None] + 0.5
    xs = torch.arange(width, dtype=torch.float64)[None, :] + 0.5
    mask = torch.zeros(height, width, dtype=torch.float64)
    for face in faces:
        x1, y1, x2, y2 = face.bbox
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        a, b = max((x2 - x1) * shape.grow / 2, 1e-6), max((y2 - y1) * shape.grow / 2, 1e-6)
        dx, dy = xs - cx, ys - cy
        if shape.shape == "box":
            distance = torch.hypot((dx.abs() - a).clamp(min=0), (dy.abs() - b).clamp(min=0))
        else:
            radius = torch.sqrt((dx / a) ** 2 + (dy / b) ** 2)
            distance = torch.hypot(dx, dy) * (1 - 1 / radius.clamp(min=1e-12)).clamp(min=0)
        if shape.feather > 0:
            value = _smoothstep(1 - distance / shape.feather)
        else:
            value = (distance <= 0).double()
        mask = torch.maximum(mask, value)
    return mask.float()


def face_masks(faces_per_image, height, width, shape=MaskShape()):
    """[B, H, W] float32: `face_mask` of each picture's faces (all zero for a picture with none)."""
    return torch.stack([face_mask(faces, height, width, shape) for faces in faces_per_image])


# ---------------------------------------------------------------------------------- crop boxes
def crop_box(faces, height, width, context=2.0):
    """One square box around the union of `faces`: side = the union's long side x `context`.

    It is shifted to stay inside the picture, and clipped (to min(H, W), still square) only when the picture is
    smaller than it. No faces: the centred square of side min(H, W) (a faceless picture is pasted back unchanged,
    its mask being zero).
    """
    if not context > 0:
        raise PulidError(f"`context` must be above 0 (1 crops the faces' box itself), not {context}.")
    limit = min(height, width)
    if not faces:
        return Box((width - limit) // 2, (height - limit) // 2, limit, limit)
    x1 = min(face.bbox[0] for face in faces)
    y1 = min(face.bbox[1] for face in faces)
    x2 = max(face.bbox[2] for face in faces)
    y2 = max(face.bbox[3] for face in faces)
    side = min(max(int(round(max(x2 - x1, y2 - y1) * context)), 1), limit)
    x = min(max(int(round((x1 + x2) / 2 - side / 2)), 0), width - side)
    y = min(max(int(round((y1 + y2) / 2 - side / 2)), 0), height - side)
    return Box(x, y, side, side)
