"""Face similarity (pulid/similarity.py) on generated antelopev2 files and synthetic faces."""
import numpy as np
import pytest

import make_face_models as mfm
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
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_identical_image_scores_one(encoder):
    image = face_image(1)
    mean, results = face_similarity(encoder, [image], [image])
    assert results[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert mean == pytest.approx(1.0, abs=1e-5)


def test_other_face_scores_lower_and_matches_plain_cosine(encoder):
    reference, other = face_image(1), face_image(2)
    _, results = face_similarity(encoder, [reference], [reference, other])
    plain = cosine(encoder.detect(reference)[0].embedding, encoder.detect(other)[0].embedding)
    assert results[1].similarity == pytest.approx(plain, abs=1e-5)
    assert results[1].similarity < results[0].similarity - 1e-4


def test_reference_is_mean_of_unit_embeddings(encoder):
    refs = [face_image(1), face_image(2)]
    units = [e / np.linalg.norm(e) for e in (encoder.detect(r)[0].embedding for r in refs)]
    expected = np.mean(units, axis=0)
    expected /= np.linalg.norm(expected)
    np.testing.assert_allclose(reference_embedding(encoder, refs), expected, atol=1e-6)


def test_faceless_result_reported_and_batch_order_kept(encoder):
    faceless = np.full((512, 512, 3), 30, np.uint8)
    images = [face_image(3), faceless, face_image(1), face_image(4)]
    mean, results = face_similarity(encoder, [face_image(1)], images)
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert results[1].similarity is None and results[1].face is None
    assert results[2].similarity == pytest.approx(1.0, abs=1e-5)
    scored = [r.similarity for r in results if r.similarity is not None]
    assert mean == pytest.approx(np.mean(scored))
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
