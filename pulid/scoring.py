"""A batch of images scored on PuLID's trade-off: likeness, prompt adherence and preservation, in one call.

Evaluate PuLID Batch (one prompt, one set of reference photos, perhaps a baseline batch) and the command-line
sweep (many prompts, faces and baselines, scored chunk by chunk) call this one function, so a number in a
sweep's scores.csv is the number the node shows for the same image. The measures themselves live in
``similarity`` (likeness) and ``tradeoff`` (the two CLIP measures); this runs the vision tower once per image
for both CLIP measures, and hands back the images' embeddings so that a baseline scored in one call can be
compared with the PuLID images of later calls without running the tower on it again.
"""
from dataclasses import dataclass

import torch

from .edits import fill_region, largest_difference_outside
from .similarity import face_similarity
from .tradeoff import image_embeddings, preservation, preservation_from_embeddings, prompt_adherence, prompt_notes


@dataclass
class BatchScores:
    """The numbers of each image of a batch, in batch order."""

    likeness: list  # ArcFace cosine to the references; None where no face was found or no references were given
    adherence: list  # prompt adherence (CLIP-T, 100 x cosine)
    preservation: list | None  # CLIP cosine to the baseline; None (the whole list) without a baseline
    notes: list  # "truncated: 77 of N tokens" where CLIP read only the start of the prompt, else ""
    faces: list  # face_similarity's SimilarityResult (the face scored, for drawing); None without references
    embeddings: torch.Tensor  # [N, D] unit-length CLIP image embeddings: pass as baseline_embeddings later
    outside: list | None = None  # with a region and baselines: largest pixel difference outside it (0..1)


def score_batch(clip, images, prompts, *, encoder=None, references=None, face="largest", baselines=None,
                baseline_embeddings=None, region=None) -> BatchScores:
    """Score ``images`` (a batch as ``tradeoff.image_embeddings`` takes it) made from ``prompts``.

    - clip: ``tradeoff.Clip`` (``tradeoff.load_clip``); prompts: one for all images, or one per image.
    - likeness: with ``encoder`` (a FaceEncoder) and ``references`` (the ID photos), each image's ``face`` is
      compared with them (``similarity.face_similarity``); without references it is not measured.
    - preservation: against ``baselines`` (images: one for all, or one per image) or ``baseline_embeddings``
      (``image_embeddings`` of them, [1, D] or [N, D], e.g. ``.embeddings`` of an earlier call); neither: None.

    - region: an ``edits.EditRegion`` of ``images`` (a [N, H, W, C] tensor), for an edit such as a face fix:
      likeness counts only faces centred inside it; preservation compares image and baseline (a tensor too) with
      the region filled grey in both, and ``outside`` holds the largest pixel difference outside it. Prompt
      adherence still reads the whole picture.

    The prompts are checked before any model runs (an empty one is ``clip_text.empty_prompt``'s error).
    """
    if region is not None and baseline_embeddings is not None:
        raise TypeError("score_batch with a `region` needs the `baselines` themselves: they are filled grey too")
    if baselines is not None and baseline_embeddings is not None:
        raise TypeError("score_batch takes `baselines` or `baseline_embeddings`, not both")
    if references is not None and encoder is None:
        raise TypeError("score_batch needs the face `encoder` to compare the images with `references`")
    notes = [n.note for n in prompt_notes([prompts] if isinstance(prompts, str) else list(prompts))]
    faces = None
    if references is not None:
        _, faces = face_similarity(encoder, list(references), list(images), face=face,
                                   within=None if region is None else region.faces)
    embeddings = image_embeddings(clip.vision, images)
    adherence = prompt_adherence(clip, None, prompts, embeddings=embeddings)  # also checks the prompt count
    outside = None
    if baselines is not None and region is not None:
        kept = preservation(clip, fill_region(images, region.changed), fill_region(baselines, region.changed))
        outside = largest_difference_outside(images, baselines, region.changed)
    elif baselines is not None:
        kept = preservation(clip, None, baselines, embeddings=embeddings)
    elif baseline_embeddings is not None:
        kept = preservation_from_embeddings(embeddings, baseline_embeddings)
    else:
        kept = None
    count = len(embeddings)
    return BatchScores(
        likeness=[None] * count if faces is None else [result.similarity for result in faces],
        adherence=adherence, preservation=kept, notes=notes * count if len(notes) == 1 else notes,
        faces=[None] * count if faces is None else faces, embeddings=embeddings, outside=outside)
