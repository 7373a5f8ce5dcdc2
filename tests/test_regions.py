"""Face regions (pulid.regions, pulid.face_crop) on pictures composed by testkit.faces, with the synthetic
antelopev2 detector: detected boxes, the detection size rule, masks and their feather, crop boxes, crop and paste,
and the errors a careless graph gets."""
import math

import numpy as np
import pytest
import torch

from pulid.detector import FaceDetector
from pulid.errors import FaceNotFoundError, PulidError
from pulid.face import DetectedFace
from pulid.face_crop import CropSettings, FaceCrop, crop_faces, paste_faces, resize
from pulid.regions import (DETECTION, REGION_CHOICES, Box, MaskShape, check_pictures, check_region, crop_box,
                           detect_faces, face_mask)
from testkit import make_face_models as mfm
from testkit.faces import compose_faces
from testkit.make_face_models import image_batch
from testkit.numerics import assert_close


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return FaceDetector(mfm.write_antelopev2(str(tmp_path_factory.mktemp("antelopev2"))), providers="CPU")


class CountingDetector:
    """A FaceDetector whose calls are counted, with the detection size each asked for."""

    def __init__(self, detector):
        self.detector, self.sizes = detector, []

    def detect(self, image, image_index=None, size=None):
        self.sizes.append(size)
        return self.detector.detect(image, image_index, size=size)


def iou(a, b):
    """IoU of two (x, y, w, h) boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def xywh(face):
    x1, y1, x2, y2 = face.bbox
    return x1, y1, x2 - x1, y2 - y1


def face(x, y, w, h):
    return DetectedFace(bbox=(x, y, x + w, y + h), score=0.9, kps=np.zeros((5, 2), np.float32), embedding=None)


def smoothstep64(t):
    t = t.clamp(0, 1)
    return t * t * (3 - 2 * t)


# ---------------------------------------------------------------------------------- detection
@pytest.mark.parametrize("height,width,faces", [
    (640, 640, [(450, 300, 100), (150, 200, 128)]),
    (1024, 1024, [(600, 500, 120), (200, 500, 100), (900, 300, 80)]),
    (768, 1280, [(900, 400, 150), (300, 400, 100)]),
    (2048, 2048, [(1400, 1000, 200), (400, 400, 300)]),
    (512, 512, [(380, 300, 80), (150, 200, 100)]),
])
def test_all_faces_left_to_right_match_the_drawn_squares(detector, height, width, faces):
    image, drawn = compose_faces(height, width, faces)
    counting = CountingDetector(detector)
    found = detect_faces(counting, image_batch(image), "all")
    assert len(counting.sizes) == 1 and counting.sizes[0] == DETECTION.for_picture(height, width)
    want = sorted(drawn, key=lambda box: box[0] + box[2] / 2)
    assert len(found[0]) == len(want)
    for got, box in zip(found[0], want):
        assert iou(xywh(got), box) >= 0.8, (xywh(got), box)
    mask = face_mask(found[0], height, width, MaskShape(grow=1.0, shape="box", feather=0))
    union = np.zeros((height, width), bool)
    for x, y, w, h in drawn:
        union[y:y + h, x:x + w] = True
    overlap = (mask.numpy() > 0) & union
    assert overlap.sum() / ((mask.numpy() > 0) | union).sum() >= 0.8


def test_detection_size_rule():
    assert [DETECTION.for_picture(h, w) for h, w in [(512, 512), (640, 640), (700, 500), (1024, 1024),
                                                      (1080, 1920), (4096, 4096), (1, 1)]] == [
        640, 640, 704, 1024, 1280, 1280, 640]


def test_a_small_face_the_640_rule_misses_is_found(detector):
    """A 64 px face in a 1280² picture reaches a 640² detector at 32 px, too small; at 1280 it is found."""
    image, drawn = compose_faces(1280, 1280, [(400, 600, 64), (1000, 300, 64)])
    assert detector.detect(image) == []
    found = detect_faces(detector, image_batch(image), "all")[0]
    assert [round(iou(xywh(f), box), 1) >= 0.8 for f, box in zip(found, drawn)] == [True, True]


def test_choices_and_one_call_per_picture(detector):
    small, _ = compose_faces(640, 640, [(150, 200, 80), (450, 300, 128)])
    counting = CountingDetector(detector)
    found = detect_faces(counting, image_batch(small, small, small), "largest")
    assert len(counting.sizes) == 3
    assert [len(f) for f in found] == [1, 1, 1] and found[0][0].bbox[2] - found[0][0].bbox[0] > 100
    first = detect_faces(detector, image_batch(small), "left-to-right #1")[0][0]
    assert first.bbox[0] < 150
    assert "all" in REGION_CHOICES and REGION_CHOICES[0] == "largest"


def test_faceless_picture(detector):
    faceless = np.full((640, 640, 3), 30, np.uint8)
    image, _ = compose_faces(640, 640, [(300, 300, 128)])
    with pytest.raises(FaceNotFoundError, match="picture 1 of `images`") as caught:
        detect_faces(detector, image_batch(image, faceless), "largest")
    assert caught.value.image_index == 1
    assert [len(f) for f in detect_faces(detector, image_batch(image, faceless), "largest", skip_faceless=True)] == [1, 0]
    with pytest.raises(FaceNotFoundError, match="only 1 face"):
        detect_faces(detector, image_batch(image), "left-to-right #2")


def test_mask_region_limits_the_candidates(detector):
    image, drawn = compose_faces(640, 640, [(150, 200, 80), (450, 300, 128)])
    images = image_batch(image)
    painted = torch.zeros(1, 640, 640)
    painted[0, 150:250, 100:200] = 1.0  # over the small left face only
    found = detect_faces(detector, images, "largest", within=check_region(painted, images))[0]
    assert iou(xywh(found[0]), drawn[0]) >= 0.8
    assert check_region(torch.zeros(64, 64), images) is None  # Load Image's empty mask restricts nothing
    with pytest.raises(PulidError, match="`mask` is 64x32 but the pictures are 640x640"):
        check_region(torch.ones(1, 32, 64), images)
    with pytest.raises(FaceNotFoundError, match="inside the mask"):
        painted = torch.zeros(1, 640, 640)
        painted[0, 600:, 600:] = 1.0
        detect_faces(detector, images, "all", within=check_region(painted, images))


# ---------------------------------------------------------------------------------- masks
@pytest.mark.parametrize("shape", ["box", "ellipse"])
def test_mask_profile_is_the_feather_of_the_distance(shape):
    """A square face: the ellipse is a circle, so both distances are exact; 0 beyond feather, 1 inside."""
    grow, feather = 1.5, 12
    height, width = 200, 240
    got = face_mask([face(100, 60, 40, 40)], height, width, MaskShape(grow, shape, feather))
    assert got.shape == (height, width) and got.dtype == torch.float32
    ys = torch.arange(height, dtype=torch.float64)[:, None] + 0.5
    xs = torch.arange(width, dtype=torch.float64)[None, :] + 0.5
    dx, dy, half = (xs - 120).abs(), (ys - 80).abs(), 20 * grow
    if shape == "box":
        distance = torch.hypot((dx - half).clamp(min=0), (dy - half).clamp(min=0))
    else:
        distance = (torch.hypot(dx, dy) - half).clamp(min=0)
    want = smoothstep64(1 - distance / feather)
    assert_close(got, want, "elementwise", scale=1.0)
    assert torch.equal(got[distance >= feather], torch.zeros(int((distance >= feather).sum())))
    assert torch.equal(got[distance == 0], torch.ones(int((distance == 0).sum())))


def test_hard_mask_and_several_faces():
    got = face_mask([face(10, 10, 20, 20), face(60, 10, 20, 30)], 60, 100, MaskShape(1.0, "box", 0))
    want = torch.zeros(60, 100)
    want[10:30, 10:30] = 1
    want[10:40, 60:80] = 1
    assert torch.equal(got, want)
    assert torch.equal(face_mask([], 8, 8), torch.zeros(8, 8))


def test_bad_mask_settings():
    with pytest.raises(PulidError, match="`shape`"):
        MaskShape(shape="circle")
    with pytest.raises(PulidError, match="`feather`"):
        MaskShape(feather=-1)


# ---------------------------------------------------------------------------------- crop boxes
def test_crop_box_context_shift_and_clip():
    assert crop_box([face(100, 100, 50, 40)], 1000, 800, 2.0) == Box(75, 70, 100, 100)
    # near the top-left corner: shifted inside, same side
    assert crop_box([face(0, 10, 60, 60)], 1000, 800, 3.0) == Box(0, 0, 180, 180)
    # near the bottom-right corner
    assert crop_box([face(760, 950, 40, 50)], 1000, 800, 2.0) == Box(700, 900, 100, 100)
    # the union of two faces
    assert crop_box([face(100, 100, 50, 50), face(300, 120, 50, 50)], 1000, 800, 1.0) == Box(100, 10, 250, 250)
    # a picture smaller than the box: clipped to min(H, W), still square, inside
    assert crop_box([face(100, 20, 100, 100)], 300, 200, 4.0) == Box(0, 0, 200, 200)
    # no face: the centred square
    assert crop_box([], 300, 200) == Box(0, 50, 200, 200)
    assert Box(1, 2, 3, 4).as_core() == {"x": 1, "y": 2, "width": 3, "height": 4}


# ---------------------------------------------------------------------------------- crop and paste
def smooth_picture(height, width, seed=0):
    """A smooth random picture (resizes of it stay within a few ulps of a float64 resize)."""
    generator = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, height // 16, width // 16, generator=generator)
    return torch.nn.functional.interpolate(small, size=(height, width), mode="bilinear").permute(0, 2, 3, 1)


def test_crop_is_the_box_resized_and_the_mask_in_crop_space():
    images = torch.cat([smooth_picture(400, 300, 0), smooth_picture(400, 300, 1)])
    faces = [[face(100, 100, 50, 50)], []]
    settings = CropSettings(context=2.0, working_size=256, mask=MaskShape(1.3, "ellipse", 8))
    crops, masks, geometry = crop_faces(images, faces, settings)
    assert crops.shape == (2, 256, 256, 3) and masks.shape == (2, 256, 256)
    assert geometry[0].box == Box(75, 75, 100, 100) and geometry[1].box == Box(0, 50, 300, 300)
    assert (geometry[0].height, geometry[0].width) == (400, 300)
    want = torch.nn.functional.interpolate(images[:1, 75:175, 75:175].permute(0, 3, 1, 2).double(), size=(256, 256),
                                           mode="bicubic", antialias=True).clamp(0, 1).permute(0, 2, 3, 1)
    assert_close(crops[:1], want, "layer")
    assert torch.equal(masks[1], torch.zeros(256, 256)) and torch.equal(geometry[1].mask, torch.zeros(400, 300))
    assert masks[0].max() == 1.0 and masks[0][0, 0] == 0.0
    full = face_mask(faces[0], 400, 300, settings.mask)
    assert torch.equal(geometry[0].mask[75:175, 75:175], full[75:175, 75:175])


def test_paste_is_bit_identical_where_the_mask_is_zero():
    images = torch.cat([smooth_picture(320, 480, 2), smooth_picture(320, 480, 3)])
    faces = [[face(200, 100, 60, 60)], [face(40, 40, 50, 50), face(300, 200, 40, 40)]]
    crops, _, geometry = crop_faces(images, faces, CropSettings(2.5, 256, MaskShape(1.3, "ellipse", 16)))
    detailed = 1.0 - crops  # a detail pass that changes every pixel of the crop
    out = paste_faces(images, resize(detailed, 192, 192), geometry)
    for index, place in enumerate(geometry):
        outside = place.mask == 0
        assert torch.equal(out[index][outside], images[index][outside])
        changed = (out[index] != images[index]).any(-1)
        assert changed.any() and not (changed & outside).any()
        # where the mask is 1, the pasted crop (resized back to the box)
        rows, cols = place.box.slices
        back = resize(resize(detailed, 192, 192)[index:index + 1], place.box.height, place.box.width)[0]
        full = place.mask[rows, cols] == 1
        assert full.any() and torch.equal(out[index, rows, cols][full], back[full])


def test_a_faceless_picture_is_pasted_back_unchanged():
    images = smooth_picture(256, 256, 4)
    crops, _, geometry = crop_faces(images, [[]], CropSettings(working_size=256))
    assert torch.equal(paste_faces(images, 1 - crops, geometry), images)


# ---------------------------------------------------------------------------------- bad input
def test_bad_pictures_name_the_input():
    with pytest.raises(PulidError, match="`images` is empty"):
        check_pictures(torch.zeros(0, 64, 64, 3))
    with pytest.raises(PulidError, match="`images` has pixel values up to 255: it looks like a 0..255 picture"):
        check_pictures(torch.full((1, 64, 64, 3), 255.0))
    with pytest.raises(PulidError, match="`crop` is empty"):
        check_pictures(torch.zeros(0, 64, 64, 3), "crop")
    with pytest.raises(PulidError, match="`working_size` must be a multiple of 8"):
        CropSettings(working_size=300)


def test_geometry_from_another_batch():
    images = smooth_picture(128, 128, 5)
    crops, _, geometry = crop_faces(images, [[face(40, 40, 30, 30)]], CropSettings(working_size=256))
    two = torch.cat([images, images])
    with pytest.raises(PulidError, match="`geometry` was made from a batch of 1 pictures, but `images` holds 2"):
        paste_faces(two, torch.cat([crops, crops]), geometry)
    with pytest.raises(PulidError, match="`crop` holds 2 pictures for 1"):
        paste_faces(images, torch.cat([crops, crops]), geometry)
    with pytest.raises(PulidError, match="`geometry` was cut from a 128x128 picture"):
        paste_faces(smooth_picture(128, 160, 6), crops, geometry)
    with pytest.raises(PulidError, match="`geometry` must come from PuLID Crop Face"):
        paste_faces(images, crops, [Box(0, 0, 1, 1)])
    assert isinstance(geometry[0], FaceCrop) and math.isclose(float(geometry[0].mask.max()), 1.0)
