"""PuLID for SDXL: the host-free library behind the ComfyUI nodes (no ComfyUI import anywhere in it).

Public API (names are stable):
- load_pulid_model / PulidModel: any supported PuLID-SDXL checkpoint (v1, v1.1; official or IP-Adapter layout).
- load_eva_clip: the EVA02-CLIP-L-14-336 vision tower through timm.
- FaceEncoder: insightface antelopev2 + facexlib + EVA-CLIP -> per-photo ID features.
- encode_identity / IDEmbedding: cond/uncond ID tokens from one or more photos; save/load.
- id_attention / project_id_tokens / PRESETS: the identity term added at each cross-attention site.
- face_similarity: ArcFace cosine similarity of generated faces to reference photos.
- load_clip_text / Clip / prompt_adherence / preservation: the EVA02-CLIP text tower (from the same file as the
  vision tower) and the trade-off's two other measures, CLIP-T and similarity to a baseline.
- load_clip: both EVA02-CLIP towers from one read of the file.
- score_batch / BatchScores: likeness, prompt adherence and preservation of a batch (the Evaluate node's numbers).
- ChartPoint / tradeoff_chart: likeness against prompt adherence, coloured by preservation.
- REGION_CHOICES / detect_faces / face_mask / face_masks / crop_box / Box / MaskShape: the faces of existing
  pictures (detector only), their feathered masks and square crop boxes.
- CropSettings / FaceCrop / crop_faces / paste_faces: the two ends of a face detail pass.
- rank_by_likeness: the top k of face_similarity's results (Best by Likeness); edit_region / EditRegion: a mask
  as score_batch's `region` (an edit measured outside and inside it).

Every name is imported on first use (PEP 562), so `import pulid` and its light modules (errors, catalog) cost
nothing: the command line's doctor must start, and report what is missing, on an install without torch,
OpenCV or numpy.
"""
import importlib

_MODULES = {
    "DEFAULT_WEIGHT": "attention", "ORTHO_MODES": "attention", "PRESETS": "attention",
    "id_attention": "attention", "project_id_tokens": "attention", "resolve_preset": "attention",
    "ChartPoint": "chart", "tradeoff_chart": "chart",
    "PulidModel": "checkpoint", "load_pulid_model": "checkpoint",
    "ClipText": "clip_text", "load_clip_text": "clip_text",
    "IDEmbedding": "embedding", "encode_identity": "embedding",
    "EmbeddingMismatchError": "errors", "FaceNotFoundError": "errors", "ModelFileError": "errors",
    "PulidError": "errors", "PulidFormatError": "errors",
    "load_eva_clip": "eva_clip",
    "FACE_CHOICES": "detector", "FaceEncoder": "face", "FaceFeatures": "face",
    "face_similarity": "similarity",
    "SITES": "sites",
    "Clip": "tradeoff", "load_clip": "tradeoff", "preservation": "tradeoff", "prompt_adherence": "tradeoff",
    "BatchScores": "scoring", "score_batch": "scoring",
    "Box": "regions", "MaskShape": "regions", "REGION_CHOICES": "regions", "crop_box": "regions",
    "detect_faces": "regions", "face_mask": "regions", "face_masks": "regions",
    "CropSettings": "face_crop", "FaceCrop": "face_crop", "crop_faces": "face_crop", "paste_faces": "face_crop",
    "rank_by_likeness": "ranking", "EditRegion": "edits", "edit_region": "edits",
}
"""Each public name -> the module of this package that defines it."""

__all__ = [
    "DEFAULT_WEIGHT", "ORTHO_MODES", "PRESETS", "id_attention", "project_id_tokens", "resolve_preset",
    "PulidModel", "load_pulid_model", "IDEmbedding", "encode_identity", "EmbeddingMismatchError",
    "FaceNotFoundError", "ModelFileError", "PulidError", "PulidFormatError", "load_eva_clip",
    "FACE_CHOICES", "FaceEncoder", "FaceFeatures", "face_similarity", "SITES",
    "ClipText", "load_clip_text", "Clip", "prompt_adherence", "preservation", "ChartPoint", "tradeoff_chart",
    "load_clip", "score_batch", "BatchScores",
    "Box", "MaskShape", "REGION_CHOICES", "crop_box", "detect_faces", "face_mask", "face_masks",
    "CropSettings", "FaceCrop", "crop_faces", "paste_faces",
    "rank_by_likeness", "EditRegion", "edit_region",
]


def __getattr__(name):
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # imported once: later look-ups skip this function
    return value


def __dir__():
    return sorted(set(globals()) | set(_MODULES))
