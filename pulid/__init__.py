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
"""
from .attention import DEFAULT_WEIGHT, ORTHO_MODES, PRESETS, id_attention, project_id_tokens, resolve_preset
from .chart import ChartPoint, tradeoff_chart
from .checkpoint import PulidModel, load_pulid_model
from .clip_text import ClipText, load_clip_text
from .embedding import IDEmbedding, encode_identity
from .errors import (EmbeddingMismatchError, FaceNotFoundError, ModelFileError, PulidError,
                     PulidFormatError)
from .eva_clip import load_eva_clip
from .face import FACE_CHOICES, FaceEncoder, FaceFeatures
from .similarity import face_similarity
from .sites import SITES
from .scoring import BatchScores, score_batch
from .tradeoff import Clip, load_clip, preservation, prompt_adherence

__all__ = [
    "DEFAULT_WEIGHT", "ORTHO_MODES", "PRESETS", "id_attention", "project_id_tokens", "resolve_preset",
    "PulidModel", "load_pulid_model", "IDEmbedding", "encode_identity", "EmbeddingMismatchError",
    "FaceNotFoundError", "ModelFileError", "PulidError", "PulidFormatError", "load_eva_clip",
    "FACE_CHOICES", "FaceEncoder", "FaceFeatures", "face_similarity", "SITES",
    "ClipText", "load_clip_text", "Clip", "prompt_adherence", "preservation", "ChartPoint", "tradeoff_chart",
    "load_clip", "score_batch", "BatchScores",
]
