"""Face similarity: how well an identity came through, measured the way the PuLID paper does.

The paper scores ID fidelity with the cosine similarity of face-recognition embeddings. We use the
face encoder's own ArcFace model (already loaded for encoding, so no second model load), compare each
generated face with the mean of the reference embeddings, and report faceless results instead of
failing on them: a weight sweep often contains a few images where the face was lost, and that is
exactly what the artist wants to see.
"""
from dataclasses import dataclass

import cv2
import numpy as np

from .errors import FaceNotFoundError, PulidError
from .detector import DetectedFace
from .image_input import to_rgb_uint8


@dataclass
class SimilarityResult:
    index: int
    similarity: float | None  # cosine in [-1, 1]; None when the image has no usable face
    face: DetectedFace | None


def _unit(vector):
    vector = np.asarray(vector, np.float64).reshape(-1)
    return vector / max(np.linalg.norm(vector), 1e-12)


def reference_embedding(face_encoder, references, face="largest"):
    """Unit-length mean of the L2-normalised ArcFace embeddings of the reference photos.

    A reference without a face is an error: the comparison would silently be against fewer photos.
    """
    units = []
    for index, image in enumerate(references):
        try:
            chosen = face_encoder.choose(image, face, image_index=index)
        except FaceNotFoundError as exc:
            raise FaceNotFoundError(
                f"Reference image {index} has no usable face: {exc} Use a clear, front-facing photo of the "
                f"person, or remove that image from the reference batch.", image_index=index) from None
        units.append(_unit(chosen.embedding))
    return _unit(np.mean(units, axis=0))


def face_similarity(face_encoder, references, images, face="largest", within=None):
    """Similarity of each image's chosen face to the references.

    Returns (mean over images that have a face, or None if none has; list of SimilarityResult in
    input order). An image whose chosen face does not exist (no face, or fewer faces than the
    choice asks for) is reported with similarity None. ``within``: one [H, W] bool region per image
    (e.g. ``edits.EditRegion.faces``); only faces whose box centre lies in it count.
    """
    if not len(references):
        raise PulidError("Face Similarity got an empty reference batch: connect the ID photo(s) to `reference`.")
    if not len(images):
        raise PulidError("Face Similarity got an empty image batch: connect the generated images to `images`.")
    reference = reference_embedding(face_encoder, references, face)
    results = []
    for index, image in enumerate(images):
        try:
            chosen = face_encoder.choose(image, face, image_index=index,
                                         within=None if within is None else within[index])
        except FaceNotFoundError:
            results.append(SimilarityResult(index, None, None))
            continue
        similarity = float(np.dot(_unit(chosen.embedding), reference))
        results.append(SimilarityResult(index, similarity, chosen))
    scored = [r.similarity for r in results if r.similarity is not None]
    mean = float(np.mean(scored)) if scored else None
    return mean, results


def format_report(results):
    """One line per image: 'index: similarity' or 'index: no face'."""
    return "\n".join(f"{r.index}: no face" if r.similarity is None else f"{r.index}: {r.similarity:.4f}"
                     for r in results)


def annotate(image, result):
    """A copy of the image (same size, RGB uint8) with the chosen face box and its score drawn on it."""
    canvas = np.ascontiguousarray(to_rgb_uint8(image).copy())
    height, width = canvas.shape[:2]
    thickness = max(1, round(min(height, width) / 256))
    scale = max(0.4, min(height, width) / 768)
    if result.face is None:
        cv2.putText(canvas, "no face", (8, int(28 * scale) + 4), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (255, 64, 64), thickness + 1, cv2.LINE_AA)
        return canvas
    x1, y1, x2, y2 = (int(round(v)) for v in result.face.bbox)
    color = (64, 220, 64) if result.similarity >= 0.5 else (255, 170, 0) if result.similarity >= 0.3 else (255, 64, 64)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), color, thickness + 1)
    label_y = y1 - 6 if y1 > 30 * scale else y2 + int(24 * scale)
    cv2.putText(canvas, f"{result.similarity:.3f}", (max(0, x1), min(height - 4, label_y)),
                cv2.FONT_HERSHEY_SIMPLEX, scale, color, thickness + 1, cv2.LINE_AA)
    return canvas
