"""Best by Likeness: the top k images of a batch by Face Similarity's numbers, for "render 4-8 seeds, keep the likest".

The scores come from pulid.similarity.face_similarity, the call Face Similarity makes, so the report prints the
numbers Face Similarity prints; pulid.ranking orders them.
"""
from ..pulid.detector import FACE_CHOICES
from ..pulid.image_input import checked_batch
from ..pulid.ranking import check_k, index_list, rank_by_likeness, ranking_report
from ..pulid.similarity import face_similarity
from . import aliases

K_MAX = 4096
"""The widget's upper bound: far above any batch a graph renders; a k above the batch keeps the whole batch."""


class PuLIDSDXLBestByLikeness:
    SEARCH_ALIASES = aliases.FACE_ID + ["best by likeness", "best of batch", "pick best", "select best", "top k",
                                        "rank faces", "most similar", "face similarity", "cherry pick"]
    DESCRIPTION = ("Keeps the k images of a batch whose face looks most like the reference photo(s): the batch "
                   "sorted by likeness (ArcFace cosine, the numbers Face Similarity gives), highest first, images "
                   "without a face last, equal scores in batch order. Render 4-8 seeds with batch_size and keep "
                   "the likest. Outputs the kept images, a report of their scores and their batch indices.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("IMAGE", "STRING", "STRING")
    RETURN_NAMES = ("images", "scores", "indices")
    OUTPUT_TOOLTIPS = (
        "The k likest images, highest likeness first (the whole batch, sorted, when k is larger than it).",
        "One line per kept image in that order: 'batch index: likeness' (as Face Similarity prints it) or "
        "'batch index: no face'; then how many were kept.",
        "The kept images' batch indices, comma-separated in kept order, e.g. '2,0,3' (0 is the first image).",
    )
    FUNCTION = "pick"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "face_encoder": ("PULID_SDXL_FACE_ENCODER", {
                "tooltip": "From Load PuLID Face Encoder (SDXL): its insightface models are reused, nothing is "
                           "loaded again."}),
            "images": ("IMAGE", {
                "tooltip": "The generated images to choose from (a batch, e.g. VAE Decode of a batch_size 4 "
                           "render)."}),
            "reference": ("IMAGE", {
                "tooltip": "The ID photo(s), e.g. the same Load Image that feeds Encode Face; each must show the "
                           "face."}),
            "k": ("INT", {
                "default": 1, "min": 1, "max": K_MAX, "step": 1,
                "tooltip": "How many images to keep; larger than the batch keeps the whole batch, sorted."}),
            "face": (list(FACE_CHOICES), {
                "default": FACE_CHOICES[0],
                "tooltip": "Which face to score when an image shows several (the same choice applies to the "
                           "reference photos)."}),
        }}

    def pick(self, face_encoder, images, reference, k, face):
        checked_batch(images, "images")
        checked_batch(reference, "reference")
        check_k(k)
        _, results = face_similarity(face_encoder.encoder, list(reference), list(images), face=face)
        kept = rank_by_likeness(results, k)
        order = [r.index for r in kept]
        return (images[order], ranking_report(kept, len(results)), index_list(kept))
