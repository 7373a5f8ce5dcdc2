"""Best by Likeness without models: pulid.ranking's order (highest first, faceless last, ties in batch order, k
above the batch) and the node's checks and outputs over a stand-in face encoder whose likeness per image is set by
the test. The node on generated antelopev2 files, through ComfyUI's executor, is tests/host/test_best_by_likeness.py.
"""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from testkit.pack import import_pack, pack_module

errors = pack_module("pulid.errors")
ranking = pack_module("pulid.ranking")
similarity = pack_module("pulid.similarity")


def results(*scores):
    return [similarity.SimilarityResult(i, s, None) for i, s in enumerate(scores)]


@pytest.mark.parametrize("scores,k,order", [
    ((0.2, 0.9, None, 0.5), 4, [1, 3, 0, 2]),
    ((0.2, 0.9, None, 0.5), 2, [1, 3]),
    ((None, 0.3, None, 0.3, 0.7), 5, [4, 1, 3, 0, 2]),  # ties and faceless keep batch order
    ((0.1, -0.4), 10, [0, 1]),  # k above the batch: the whole batch, sorted
    ((None, None), 1, [0]),
    ((-0.5, -0.1, -0.9), 3, [1, 0, 2]),  # negative cosines sort too
])
def test_order(scores, k, order):
    kept = ranking.rank_by_likeness(results(*scores), k)
    assert [r.index for r in kept] == order
    assert ranking.index_list(kept) == ",".join(map(str, order))


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "2"])
def test_bad_k_names_it(k):
    with pytest.raises(errors.PulidError, match="`k` must be a whole number of 1 or more"):
        ranking.rank_by_likeness(results(0.5), k)


def test_report_is_face_similaritys_lines_in_kept_order():
    kept = ranking.rank_by_likeness(results(0.25, None, 0.75), 3)
    assert ranking.ranking_report(kept, 3).splitlines() == [
        "2: 0.7500", "0: 0.2500", "1: no face", "kept 3 of 3 images, highest likeness first"]


class StandIn:
    """A face encoder whose chosen face of image i has an embedding at angle ANGLES[i] to the reference's
    (the image's first pixel holds i); NaN: no face."""

    def __init__(self, angles):
        self.angles = angles

    def choose(self, image, face, image_index=None, within=None):
        marker = int(round(float(image[0, 0, 0]) * 100))
        if marker >= 50:  # a reference photo
            angle = 0.0
        else:
            angle = self.angles[marker]
        if np.isnan(angle):
            raise errors.FaceNotFoundError("No face found.", image_index)
        return pack_module("pulid.detector").DetectedFace((0, 0, 1, 1), 1.0, np.zeros((5, 2)),
                                                           np.array([np.cos(angle), np.sin(angle)], np.float32))


def batch(count, first=0):
    images = torch.full((count, 8, 8, 3), 0.2)
    for i in range(count):
        images[i, 0, 0, 0] = (first + i) / 100
    return images


@pytest.fixture(scope="module")
def node():
    return import_pack().NODE_CLASS_MAPPINGS["PuLIDSDXLBestByLikeness"]()


def test_node_keeps_the_likest_with_face_similaritys_numbers(node):
    encoder = StandIn([1.0, 0.2, float("nan"), 0.6, 0.2])
    handle = SimpleNamespace(encoder=encoder)
    images, reference = batch(5), batch(1, 60)
    kept, scores, indices = node.pick(handle, images, reference, 3, "largest")
    assert indices == "1,4,3"
    assert torch.equal(kept, images[[1, 4, 3]])
    _, plain = similarity.face_similarity(encoder, list(reference), list(images))
    printed = dict(line.split(": ") for line in similarity.format_report(plain).splitlines())
    assert scores.splitlines()[:3] == [f"{i}: {printed[str(i)]}" for i in (1, 4, 3)]
    kept, scores, indices = node.pick(handle, images, reference, 9, "largest")
    assert indices == "1,4,3,0,2" and scores.splitlines()[4] == "2: no face" and kept.shape[0] == 5


@pytest.mark.parametrize("change,match", [
    ({"reference": torch.zeros(0, 8, 8, 3)}, "`reference` is empty"),
    ({"images": torch.zeros(0, 8, 8, 3)}, "`images` is empty"),
    ({"images": batch(2) * 255}, "`images` has pixel values up to 51"),
    ({"reference": batch(1, 60) * 255}, "`reference` has pixel values up to"),
    ({"k": 0}, "`k` must be a whole number of 1 or more"),
])
def test_node_bad_input_names_it_before_scoring(node, change, match):
    def refuse(*args, **kwargs):
        raise AssertionError("scored before the inputs were checked")

    args = {"face_encoder": SimpleNamespace(encoder=SimpleNamespace(choose=refuse)), "images": batch(2),
            "reference": batch(1, 60), "k": 1, "face": "largest", **change}
    with pytest.raises(errors.PulidError, match=match):
        node.pick(**args)
