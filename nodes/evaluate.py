"""Evaluate PuLID Batch: the three numbers of PuLID's trade-off for each image of a batch, a report and a chart.

- likeness: ArcFace cosine to the reference photos (pulid.similarity, as Face Similarity);
- prompt adherence: CLIP-T, 100 x the EVA02-CLIP cosine of the image and the prompt (pulid.tradeoff);
- preservation: EVA02-CLIP cosine of the image and a baseline (the same seed without PuLID), when one is given.

With a `mask` (an edit such as a face fix, measured against the picture it was made from) the masked region is
filled grey in both pictures before preservation, the largest pixel difference outside the mask is reported, and
likeness counts only faces centred inside it (pulid.edits).

All three come from pulid.scoring.score_batch, as the command-line sweep's scores do.

The EVA-CLIP vision tower is the face encoder's own; the text tower is read from the same file the first time
this node runs, through ComfyUI's model management, and kept on the face-encoder handle (Encode Face never
loads it). The library modules that need open_clip are imported on first use, not when ComfyUI starts.
"""
import logging

import numpy as np
import torch

from ..pulid.chart import ChartPoint, captioned, tradeoff_chart
from ..pulid.clip_text import clean_prompt, empty_prompt, load_clip_text
from ..pulid.edits import edit_region
from ..pulid.errors import PulidError
from ..pulid.detector import FACE_CHOICES
from ..pulid.scoring import score_batch
from ..pulid.similarity import annotate
from ..pulid.tradeoff import Clip
from . import aliases, runtime

logger = logging.getLogger(__name__)

NO_VALUE = 0.0
"""A mean output with nothing to average (no face anywhere, no baseline): a number a graph can still use."""
CHART_SIZE = (1024, 768)


def _count(batch):
    return 0 if batch is None else int(batch.shape[0]) if hasattr(batch, "shape") else len(batch)


def _size(batch):
    """(height, width) of an IMAGE batch [B, H, W, C]."""
    return tuple(int(v) for v in batch.shape[1:3])


def check_inputs(reference, images, prompt, baseline=None, labels=None):
    """The labels (one per image) after checking every input; a PulidError naming the input otherwise."""
    if _count(reference) == 0:
        raise PulidError("Evaluate PuLID Batch got an empty `reference` batch: connect the ID photo(s), e.g. the "
                         "Load Image that feeds Encode Face.")
    count = _count(images)
    if count == 0:
        raise PulidError("Evaluate PuLID Batch got an empty `images` batch: connect the generated images "
                         "(e.g. VAE Decode).")
    # Checked as CLIP will read it: a prompt of only `embedding:name` tokens or empty weights has no words.
    if not isinstance(prompt, str) or not clean_prompt(prompt).strip():
        raise empty_prompt(prompt, where="Evaluate PuLID Batch")
    if baseline is not None:
        bases = _count(baseline)
        if bases == 0:
            raise PulidError("Evaluate PuLID Batch got an empty `baseline` batch: connect the image made with "
                             "PuLID off (weight 0, same seed), or disconnect `baseline`.")
        if bases not in (1, count):
            raise PulidError(f"Evaluate PuLID Batch: `baseline` has {bases} images but `images` has {count}: give "
                             f"one baseline for all images or one per image, in the same order.")
        if _size(baseline) != _size(images):
            (bh, bw), (ih, iw) = _size(baseline), _size(images)
            raise PulidError(f"Evaluate PuLID Batch: `baseline` is {bw}x{bh} but `images` are {iw}x{ih}: the "
                             f"baseline must be the same picture made without PuLID, at the same size.")
    names = [line.strip() for line in (labels or "").strip().splitlines()]
    if not names:
        return [f"image {i}" for i in range(count)]
    if len(names) != count:
        raise PulidError(f"Evaluate PuLID Batch: `labels` has {len(names)} lines but `images` has {count} "
                         f"images: write one label per line, one per image in batch order (or leave it empty).")
    return [name or f"image {i}" for i, name in enumerate(names)]


def clip_towers(face_encoder):
    """pulid.tradeoff.Clip (the face encoder's vision tower + the text tower from the same file), on ComfyUI's
    device. The text tower is loaded once per face-encoder handle and kept on it."""
    encoder = face_encoder.encoder
    if face_encoder.clip_text is None:
        path = getattr(encoder, "eva_clip_path", None)
        if path is None:
            raise PulidError("Evaluate PuLID Batch needs the EVA-CLIP file the face encoder was loaded from (its "
                             "text tower measures prompt adherence); this face encoder was built from a loaded "
                             "module. Use Load PuLID Face Encoder (SDXL).")
        dtype = next(encoder.eva.parameters()).dtype
        logger.info("Evaluate PuLID Batch: loading the EVA-CLIP text tower from %s", path)
        face_encoder.clip_text = runtime.managed(load_clip_text(path, dtype=dtype))
    runtime.load_models(face_encoder.patcher, face_encoder.clip_text)
    return Clip(vision=encoder.eva, text=face_encoder.clip_text.model)


def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def report_lines(labels, likeness, adherence, preservation, note="", outside=None):
    """One line per image (its numbers and label, "no face" where none), then the means (and with a mask, the
    largest pixel difference outside it over the batch)."""
    lines = []
    for i, label in enumerate(labels):
        face = "no face" if likeness[i] is None else f"likeness {likeness[i]:.4f}"
        kept = "" if preservation is None else f" | preservation {preservation[i]:.4f}"
        kept += "" if outside is None else f" | outside mask max diff {outside[i]:.4f}"
        lines.append(f"{i}: {face} | prompt adherence {adherence[i]:.2f}{kept} | {label}")
    scored = sum(v is not None for v in likeness)
    mean = _mean(likeness)
    face = (f"likeness {mean:.4f} over {scored} of {len(labels)} images" if mean is not None
            else f"no face in any of the {len(labels)} images (likeness output is {NO_VALUE})")
    kept = (f"preservation {_mean(preservation):.4f}" if preservation is not None
            else f"preservation: no baseline (output is {NO_VALUE})")
    kept += "" if outside is None else f" | outside mask max diff {max(outside):.4f}"
    lines.append(f"mean: {face} | prompt adherence {_mean(adherence):.2f} | {kept}")
    if note:
        lines.append(f"prompt {note} (CLIP reads only the start of a long prompt)")
    return lines


def annotated_image(image, result, label, likeness, adherence, preservation, outside=None):
    """The image with its face box and likeness (as Face Similarity draws them), the label and numbers under it
    (with a mask, the largest difference outside it on a third line)."""
    boxed = annotate(image, result)
    face = "no face" if likeness is None else f"likeness {likeness:.3f}"
    kept = "" if preservation is None else f"  preserv. {preservation:.3f}"
    extra = [] if outside is None else [f"outside mask max diff {outside:.3f}"]
    return captioned(boxed, [label, f"{face}  prompt {adherence:.1f}{kept}", *extra])


class PuLIDSDXLEvaluate:
    SEARCH_ALIASES = aliases.FACE_ID + ['evaluate', 'clip score', 'clip-t', 'clipscore', 'prompt adherence',
                                        'preservation', 'fidelity editability', 'tradeoff', 'trade-off',
                                        'face similarity', 'benchmark', 'compare weights']
    DESCRIPTION = ("Scores each image of a batch on PuLID's trade-off: likeness (ArcFace cosine to the reference "
                   "photos, -1 to 1), prompt adherence (CLIP-T: 100 x EVA02-CLIP cosine of image and prompt) and, "
                   "with a baseline made without PuLID, preservation (CLIP cosine to it, 1 = unchanged). Outputs "
                   "the means, a report (one line per image), a chart of likeness against prompt adherence "
                   "coloured by preservation, and the images with their numbers. With a mask (an edit such as a "
                   "face fix), preservation ignores the masked region, the report adds the largest pixel difference "
                   "outside it and likeness is read inside it. Loads the EVA-CLIP text tower from the face "
                   "encoder's file on first use.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("FLOAT", "FLOAT", "FLOAT", "STRING", "IMAGE", "IMAGE")
    RETURN_NAMES = ("likeness", "prompt_adherence", "preservation", "report", "chart", "annotated")
    OUTPUT_TOOLTIPS = (
        "Mean likeness (ArcFace cosine to the reference) over the images with a face; 0.0 when none has one.",
        "Mean prompt adherence (CLIP-T, 100 x cosine; about 20 to 35 for SDXL images, higher follows the prompt "
        "better).",
        "Mean preservation (CLIP cosine to the baseline, 1 = same picture); 0.0 without a baseline (see the report).",
        "One line per image: its likeness (or 'no face'), prompt adherence, preservation and label; then the means. "
        "With a mask and a baseline, also 'outside mask max diff': the largest pixel difference (0..1) between "
        "image and baseline outside the mask (0 = untouched there; the mean line gives the batch's largest).",
        "Likeness against prompt adherence, one labelled point per image, colour = preservation; images without a "
        "face in a strip below.",
        "Each image with its face box, and its label and numbers written under it.",
    )
    FUNCTION = "evaluate"

    @classmethod
    def INPUT_TYPES(cls):
        return {
            "required": {
                "face_encoder": ("PULID_SDXL_FACE_ENCODER", {
                    "tooltip": "From Load PuLID Face Encoder (SDXL): its insightface and EVA-CLIP models are reused; "
                               "the EVA-CLIP text tower is read from the same file once."}),
                "reference": ("IMAGE", {
                    "tooltip": "The ID photo(s), e.g. the same Load Image that feeds Encode Face; each must show "
                               "the face."}),
                "images": ("IMAGE", {
                    "tooltip": "The generated images to score (a batch, e.g. from VAE Decode)."}),
                "prompt": ("STRING", {
                    "default": "", "multiline": True,
                    "tooltip": "The positive prompt the images were made from (type it, or connect the same text "
                               "node). Weights like (word:1.2) are read as plain words; CLIP reads 77 tokens."}),
                "face": (list(FACE_CHOICES), {
                    "default": FACE_CHOICES[0],
                    "tooltip": "Which face to score when an image shows several (the same choice applies to the "
                               "reference photos)."}),
            },
            "optional": {
                "baseline": ("IMAGE", {
                    "tooltip": "The same seed and prompt with PuLID off (weight 0), same size: one image for all, "
                               "or one per image. Without it preservation is not measured."}),
                "labels": ("STRING", {
                    "default": "", "multiline": True,
                    "tooltip": "One label per line, one per image in batch order (e.g. 'w 0.6 fidelity'); shown "
                               "in the report, chart and annotated images. Empty: image 0, image 1, ..."}),
                "mask": ("MASK", {
                    "tooltip": "Optional, for an edit such as a face fix (e.g. Face Mask's): preservation compares "
                               "image and baseline with the masked region filled grey in both, the report adds the "
                               "largest pixel difference outside it, and likeness counts only faces centred inside "
                               "it. Same size as the images; one mask or one per image; empty: whole picture."}),
            },
        }

    def evaluate(self, face_encoder, reference, images, prompt, face, baseline=None, labels=None, mask=None):
        names = check_inputs(reference, images, prompt, baseline, labels)
        region = edit_region(mask, images)
        clip = clip_towers(face_encoder)
        runtime.check_interrupted()
        scores = score_batch(clip, images, prompt, encoder=face_encoder.encoder, references=reference, face=face,
                             baselines=baseline, region=region)
        likeness, adherence, kept, results = scores.likeness, scores.adherence, scores.preservation, scores.faces
        mean_likeness, note, outside = _mean(likeness), scores.notes[0], scores.outside

        report = "\n".join(report_lines(names, likeness, adherence, kept, note, outside))
        points = [ChartPoint(names[i], likeness[i], adherence[i], None if kept is None else kept[i])
                  for i in range(len(names))]
        chart = tradeoff_chart(points, title=prompt, size=CHART_SIZE)
        annotated = np.stack([annotated_image(image, result, names[i], likeness[i], adherence[i],
                                              None if kept is None else kept[i],
                                              None if outside is None else outside[i])
                              for i, (image, result) in enumerate(zip(images, results))])
        as_image = lambda pixels: torch.from_numpy(pixels.astype(np.float32) / 255.0)  # noqa: E731
        return (NO_VALUE if mean_likeness is None else mean_likeness, float(np.mean(adherence)),
                NO_VALUE if kept is None else float(np.mean(kept)), report, as_image(chart[None]),
                as_image(annotated))
