"""Face similarity (pulid/similarity.py) on generated antelopev2 files and synthetic faces."""
import numpy as np
import pytest
import torch

from testkit import make_face_models as mfm
from testkit.numerics import assert_close
from pulid.errors import FaceNotFoundError
from pulid.face import FaceEncoder
from pulid.similarity import annotate, face_similarity, format_report, reference_embedding


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    root = tmp_path_factory.mktemp("similarity_models")
    return FaceEncoder(mfm.write_eva_clip_checkpoint(str(root / "eva.safetensors"), "timm"),
                       mfm.write_antelopev2(str(root / "antelopev2")),
                       mfm.write_facexlib(str(root / "facexlib")), providers="CPU")


def face_image(seed, center=(336, 304), side=128):
    """A synthetic face with its own skin texture, so each seed is 'another person' to ArcFace."""
    image = mfm.draw_face(np.full((640, 640, 3), 30, np.uint8), center, side)
    rng = np.random.default_rng(seed)
    half = side // 2
    patch = image[center[1] - half:center[1] + half, center[0] - half:center[0] + half].astype(np.int16)
    patch += rng.integers(-6, 7, patch.shape, dtype=np.int16)
    image[center[1] - half:center[1] + half, center[0] - half:center[0] + half] = patch.clip(0, 255)
    return image


def cosine(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def assert_score(got, want):
    """Scores are float64 arithmetic on the same float32 embeddings: only float64 roundings differ."""
    assert_close(torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64), "layer")


def test_identical_image_scores_one(encoder):
    image = face_image(1)
    mean, results = face_similarity(encoder, [image], [image])
    assert_score(results[0].similarity, 1.0)
    assert_score(mean, 1.0)


def test_other_face_scores_lower_and_matches_plain_cosine(encoder):
    reference, other = face_image(1), face_image(2)
    _, results = face_similarity(encoder, [reference], [reference, other])
    plain = cosine(encoder.detect(reference)[0].embedding, encoder.detect(other)[0].embedding)
    assert_score(results[1].similarity, plain)
    assert results[1].similarity < results[0].similarity - 1e-4


def test_reference_is_mean_of_unit_embeddings(encoder):
    refs = [face_image(1), face_image(2)]
    embeddings = [np.asarray(encoder.detect(r)[0].embedding, np.float64) for r in refs]
    expected = np.mean([e / np.linalg.norm(e) for e in embeddings], axis=0)
    expected /= np.linalg.norm(expected)
    assert_score(reference_embedding(encoder, refs), expected)


def test_faceless_result_reported_and_batch_order_kept(encoder):
    faceless = np.full((512, 512, 3), 30, np.uint8)
    images = [face_image(3), faceless, face_image(1), face_image(4)]
    mean, results = face_similarity(encoder, [face_image(1)], images)
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert results[1].similarity is None and results[1].face is None
    assert_score(results[2].similarity, 1.0)
    scored = [r.similarity for r in results if r.similarity is not None]
    assert_score(mean, np.mean(scored))
    assert format_report(results).splitlines()[1] == "1: no face"


def test_all_faceless_gives_no_mean(encoder):
    mean, results = face_similarity(encoder, [face_image(1)], [np.full((256, 256, 3), 30, np.uint8)])
    assert mean is None and results[0].similarity is None


def test_faceless_reference_names_the_image(encoder):
    with pytest.raises(FaceNotFoundError, match="Reference image 1") as info:
        face_similarity(encoder, [face_image(1), np.full((256, 256, 3), 30, np.uint8)], [face_image(1)])
    assert info.value.image_index == 1


def test_annotation_keeps_size_and_marks_the_face(encoder):
    image = face_image(1)
    _, results = face_similarity(encoder, [image], [image, np.full((300, 200, 3), 30, np.uint8)])
    marked = annotate(image, results[0])
    assert marked.shape == image.shape and marked.dtype == np.uint8
    assert not np.array_equal(marked, image)
    x1, y1, x2, y2 = (int(round(v)) for v in results[0].face.bbox)
    assert not np.array_equal(marked[y1, x1:x2], image[y1, x1:x2])  # the box's top edge is drawn
    assert annotate(np.full((300, 200, 3), 30, np.uint8), results[1]).shape == (300, 200, 3)
