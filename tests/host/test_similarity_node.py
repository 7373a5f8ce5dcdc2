"""Face Similarity node: the node function on generated antelopev2 files without ComfyUI, then the same
node validated and executed by ComfyUI's PromptExecutor on both hosts (COMFYUI_PATH).

Expected values come from a plain cosine of the encoder's raw ArcFace embeddings, computed here.
"""
import re
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from testkit import make_face_models as mfm
from testkit.make_face_models import face_photo, image_batch as batch
from testkit.numerics import assert_close
from testkit.pack import PACK, import_pack

FACELESS = np.full((640, 640, 3), 30, np.uint8)


def assert_score(got, want):
    """Scores are float64 arithmetic on the same float32 embeddings: only float64 roundings differ."""
    assert_close(torch.tensor(float(got), dtype=torch.float64), torch.tensor(want, dtype=torch.float64), "layer")


def unit(vector):
    return vector / np.linalg.norm(vector)


@pytest.fixture(scope="module")
def node():
    return import_pack().NODE_CLASS_MAPPINGS["PuLIDSDXLFaceSimilarity"]()


@pytest.fixture(scope="module")
def handle(tmp_path_factory):
    """What Load PuLID Face Encoder returns, without the ModelPatcher the node does not use."""
    import_pack()
    face = sys.modules[PACK + ".pulid.face"]
    root = tmp_path_factory.mktemp("similarity_node_models")
    encoder = face.FaceEncoder(mfm.write_eva_clip_checkpoint(str(root / "eva.safetensors"), "timm"),
                               mfm.write_antelopev2(str(root / "antelopev2")),
                               mfm.write_facexlib(str(root / "facexlib")), providers="CPU")
    return SimpleNamespace(encoder=encoder, patcher=None)


def test_identical_image_scores_one(node, handle):
    image = batch(face_photo(1))
    similarity, report, annotated = node.compare(handle, image, image, "largest")
    assert isinstance(similarity, float)
    assert_score(similarity, 1.0)
    assert report.splitlines()[0] == "0: 1.0000"
    assert annotated.shape == image.shape and annotated.dtype == torch.float32


def test_batch_with_a_faceless_image(node, handle):
    """Faceless results are reported, the order is kept, each score is the plain cosine to the reference."""
    reference = face_photo(1)
    centers = [(208, 208), None, (336, 304), (432, 432)]
    images = [face_photo(3, centers[0]), FACELESS, reference, face_photo(4, centers[3])]
    similarity, report, annotated = node.compare(handle, batch(reference), batch(*images), "largest")

    ref = unit(handle.encoder.detect(reference)[0].embedding.astype(np.float64))
    expected = {i: float(unit(handle.encoder.detect(images[i])[0].embedding.astype(np.float64)) @ ref)
                for i in (0, 2, 3)}
    lines = report.splitlines()
    assert len(lines) == 5 and lines[1] == "1: no face"
    for i, value in expected.items():
        index, score = lines[i].split(": ")
        assert int(index) == i and score == f"{value:.4f}"  # the report prints 4 decimals
    assert_score(expected[2], 1.0)
    assert expected[0] < 0.9999 and expected[3] < 0.9999
    assert_score(similarity, np.mean(list(expected.values())))
    assert re.fullmatch(r"mean: [-0-9.]+ over 3 of 4 images", lines[4])

    assert annotated.shape == (4, 640, 640, 3)
    for i, center in enumerate(centers):
        changed = np.argwhere(np.abs(annotated[i].numpy() - images[i] / 255.0).max(axis=2) > 0.02)
        assert len(changed), f"image {i} has nothing drawn on it"
        if center is not None:  # the box is drawn around this image's own face
            middle = changed.mean(axis=0)[::-1]
            assert np.abs(middle - center).max() < 40, (i, middle, center)


def test_no_face_anywhere_gives_zero_and_says_so(node, handle):
    similarity, report, annotated = node.compare(handle, batch(face_photo(1)), batch(FACELESS[:320, :480]), "largest")
    assert similarity == 0.0
    assert report.splitlines() == ["0: no face", "mean: no face in any of the 1 images (similarity output is 0.0)"]
    assert annotated.shape == (1, 320, 480, 3)


def test_faceless_reference_is_an_error_naming_it(node, handle):
    errors = sys.modules[PACK + ".pulid.errors"]
    with pytest.raises(errors.FaceNotFoundError, match="Reference image 1") as caught:
        node.compare(handle, batch(face_photo(1), FACELESS), batch(face_photo(1)), "largest")
    assert caught.value.image_index == 1


# ---------------------------------------------------------------- in ComfyUI

@pytest.mark.host
def test_node_runs_in_comfyui(comfy):
    """Load Image -> Face Similarity against itself, the outputs shown by the core Preview Any node."""
    prompt = {
        "3": {"class_type": "PuLIDSDXLFaceEncoderLoader", "inputs": {
            "eva_clip_file": "EVA02_CLIP_L_336_psz14_s6B.pt", "insightface_model": "antelopev2", "provider": "CPU"}},
        "4": {"class_type": "LoadImage", "inputs": {"image": "face.png"}},
        "5": {"class_type": "PuLIDSDXLFaceSimilarity", "inputs": {
            "face_encoder": ["3", 0], "reference": ["4", 0], "images": ["4", 0], "face": "largest"}},
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 0]}},
        "7": {"class_type": "PreviewAny", "inputs": {"source": ["5", 1]}},
        "8": {"class_type": "PreviewImage", "inputs": {"images": ["5", 2]}},
    }
    bad = {**prompt, "5": {**prompt["5"], "inputs": {**prompt["5"]["inputs"], "face": "middle"}}}
    assert "5" in comfy.validate(bad)[3]
    outputs = comfy.run(prompt).history_result["outputs"]
    assert_score(outputs["6"]["text"][0], 1.0)
    assert outputs["7"]["text"][0].splitlines()[0] == "0: 1.0000"
    assert len(outputs["8"]["images"]) == 1
