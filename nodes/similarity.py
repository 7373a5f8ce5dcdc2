"""Face Similarity: how much of the reference identity each generated image kept (ArcFace cosine).

Runs only insightface (detection and ArcFace, onnxruntime), which the loaded face encoder already
holds, so it loads nothing and needs none of the encoder's torch modules on the GPU.
"""
import numpy as np
import torch

from ..pulid.detector import FACE_CHOICES
from ..pulid.similarity import annotate, face_similarity, format_report
from . import aliases

NO_FACE_VALUE = 0.0
"""The `similarity` output when no image has a face: a number a graph can still use; the report says why."""


def summary_line(mean, results):
    scored = sum(r.similarity is not None for r in results)
    if mean is None:
        return f"mean: no face in any of the {len(results)} images (similarity output is {NO_FACE_VALUE})"
    return f"mean: {mean:.4f} over {scored} of {len(results)} images"


class PuLIDSDXLFaceSimilarity:
    SEARCH_ALIASES = aliases.FACE_ID + ['face similarity', 'face sim', 'arcface', 'identity score',
                                        'likeness score']
    DESCRIPTION = ("Scores how well the identity came through: cosine similarity (-1 to 1, higher is closer) "
                   "between the ArcFace embedding of the face in each image and the mean embedding of the "
                   "reference photos, as in the PuLID paper's face-sim metric. Images without a face are "
                   "reported, not an error. Outputs the mean, a text report (one line per image) and the "
                   "images with the face box and score drawn on them.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("FLOAT", "STRING", "IMAGE")
    RETURN_NAMES = ("similarity", "report", "annotated")
    OUTPUT_TOOLTIPS = ("Mean similarity over the images that have a face; 0.0 when none has (see the report).",
                       "One line per image: 'index: similarity' or 'index: no face', then the mean.",
                       "Each image with its chosen face box and score drawn on it, same size as the input.")
    FUNCTION = "compare"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "face_encoder": ("PULID_SDXL_FACE_ENCODER", {
                "tooltip": "From Load PuLID Face Encoder (SDXL): its insightface models are reused, nothing is loaded again."}),
            "reference": ("IMAGE", {
                "tooltip": "The ID photo(s), e.g. the same Load Image that feeds Encode Face; each must show the face."}),
            "images": ("IMAGE", {
                "tooltip": "The generated images (a batch, e.g. straight from VAE Decode)."}),
            "face": (list(FACE_CHOICES), {
                "default": FACE_CHOICES[0],
                "tooltip": "Which face to score when an image shows several (the same choice applies to the "
                           "reference photos)."}),
        }}

    def compare(self, face_encoder, reference, images, face):
        mean, results = face_similarity(face_encoder.encoder, list(reference), list(images), face=face)
        report = format_report(results) + "\n" + summary_line(mean, results)
        annotated = np.stack([annotate(image, result) for image, result in zip(images, results)])
        annotated = torch.from_numpy(annotated.astype(np.float32) / 255.0)
        return (NO_FACE_VALUE if mean is None else mean, report, annotated)
