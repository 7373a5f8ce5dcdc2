"""Pictures with drawn faces where the synthetic detector finds them, and the boxes it should find.

The blob detector of `make_face_models` reports a face at the stride-32 cell its blob is centred on, in its own
input pixels: a picture is letterboxed into the detection size `pulid.regions.DETECTION` picks for it, so a face
lands on a cell only if its centre, scaled by detection size / long side, is 32k + 16. `compose_faces` snaps the
centres asked for to the nearest such point, so the test knows the exact boxes it drew.
"""
import numpy as np

from pulid.regions import DETECTION
from testkit.make_face_models import DETECT_STRIDE, draw_face

MIN_APART = 8 * DETECT_STRIDE
"""Centres closer than this (detector pixels) share the detector's 7x7-cell counting window and merge."""


def detector_scale(height, width, size=DETECTION):
    """Detector pixels per picture pixel for a picture of this size."""
    return size.for_picture(height, width) / max(height, width)


def snap(value, scale):
    """The picture coordinate nearest `value` whose detector coordinate is a cell centre (32k + 16)."""
    cell = round((value * scale - DETECT_STRIDE / 2) / DETECT_STRIDE)
    return int(round((cell * DETECT_STRIDE + DETECT_STRIDE / 2) / scale))


def compose_faces(height, width, faces, background=30, size=DETECTION):
    """(picture uint8 [H, W, 3], boxes): `faces` are (cx, cy, side) in picture pixels; each centre is snapped to
    a detector cell, each side (the detector sees side x scale: keep that within ~64..200) drawn as is.

    boxes: (x, y, w, h) in picture pixels, in the order given. Raises if two faces would merge or one leaves the
    picture, so a test cannot silently lose a face.
    """
    scale = detector_scale(height, width, size)
    image = np.full((height, width, 3), background, np.uint8)
    centres, boxes = [], []
    for cx, cy, side in faces:
        x, y = snap(cx, scale), snap(cy, scale)
        half = side // 2
        if x - half < 0 or y - half < 0 or x + half > width or y + half > height:
            raise ValueError(f"face at ({x}, {y}) of side {side} leaves the {width}x{height} picture")
        for ox, oy in centres:
            if max(abs(ox - x), abs(oy - y)) * scale < MIN_APART:
                raise ValueError(f"faces at ({ox}, {oy}) and ({x}, {y}) are too close for the detector")
        draw_face(image, (x, y), side)
        centres.append((x, y))
        boxes.append((x - half, y - half, 2 * half, 2 * half))
    return image, boxes
