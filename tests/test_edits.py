"""pulid.edits: the mask read as an edit region (sizes, counts, the empty mask), the grey fill, and the largest
difference outside the region against a plain float64 reference."""
import numpy as np
import pytest
import torch

from testkit.numerics import assert_close
from testkit.pack import pack_module

edits = pack_module("pulid.edits")
errors = pack_module("pulid.errors")


def feathered(height=16, width=20):
    """0 outside rows 4..11 x columns 5..14, 1 in its middle, a ramp between (a feathered face mask)."""
    mask = torch.zeros(height, width)
    mask[4:12, 5:15] = 0.3
    mask[6:10, 7:13] = 1.0
    return mask


def test_region_is_the_masks_support_and_faces_its_core():
    images = torch.rand(2, 16, 20, 3)
    region = edits.edit_region(feathered(), images)
    assert region.changed.shape == region.faces.shape == (2, 16, 20)
    assert torch.equal(region.changed[1], feathered() > 0) and torch.equal(region.faces[0], feathered() > 0.5)
    per_image = torch.stack([feathered(), feathered().flip(1)])
    assert torch.equal(edits.edit_region(per_image, images).changed[1], feathered().flip(1) > 0)


def test_no_mask_or_an_empty_one_measures_the_whole_picture():
    images = torch.rand(1, 16, 20, 3)
    assert edits.edit_region(None, images) is None
    assert edits.edit_region(torch.zeros(1, 64, 64), images) is None  # Load Image's empty mask, any size


@pytest.mark.parametrize("mask,match", [
    (torch.ones(1, 16, 16), "`mask` is 16x16 but the pictures are 20x16"),
    (torch.ones(3, 16, 20), "`mask` holds 3 masks for 2 pictures"),
])
def test_bad_mask_names_it(mask, match):
    with pytest.raises(errors.PulidError, match=match):
        edits.edit_region(mask, torch.rand(2, 16, 20, 3))


def test_fill_greys_the_region_and_keeps_the_rest_bit_for_bit():
    images = torch.rand(2, 16, 20, 3)
    changed = edits.edit_region(feathered(), images).changed
    filled = edits.fill_region(images, changed)
    assert torch.equal(filled[changed], torch.full_like(filled[changed], edits.FILL))
    assert torch.equal(filled[~changed], images[~changed])
    shared = edits.fill_region(images[:1], changed)  # one baseline for the batch: filled with each region
    assert shared.shape == images.shape and torch.equal(shared[1][~changed[1]], images[0][~changed[1]])


def test_largest_difference_outside():
    images = torch.rand(2, 16, 20, 3)
    baseline = images.clone()
    baseline[0, 7, 8] += 0.4  # inside the core: not counted
    baseline[0, 4, 5, 2] -= 0.25  # on the feather (mask 0.3): inside the region, not counted
    baseline[1, 0, 0, 1] = 1.0 - images[1, 0, 0, 1]  # outside: counted
    changed = edits.edit_region(feathered(), images).changed
    got = edits.largest_difference_outside(images, baseline, changed)
    assert got[0] == 0.0
    outside = ~changed.numpy()
    want = [np.abs(images[i].double().numpy() - baseline[i].double().numpy()).max(-1)[outside[i]].max() for i in (0, 1)]
    assert_close(torch.tensor(got, dtype=torch.float64), torch.tensor(want), "elementwise", dtype=torch.float32)
    assert got[1] > 0
    everywhere = torch.ones(2, 16, 20, dtype=torch.bool)
    assert edits.largest_difference_outside(images, baseline, everywhere) == [0.0, 0.0]
