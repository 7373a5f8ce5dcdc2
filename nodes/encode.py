"""Encode Face: photos of one person -> PuLID ID embeddings (the only node that runs the face pipeline)."""
import logging

import numpy as np
import torch

from ..pulid.embedding import AUTO, AUTO_MODE, MULTI_IMAGE_CHOICES, MULTI_IMAGE_MODES, encode_identity
from ..pulid.errors import FaceNotFoundError
from ..pulid.detector import FACE_CHOICES
from . import aliases, runtime

log = logging.getLogger(__name__)


def multi_image_tooltip():
    """The multi_image tooltip, written from the library's modes: what auto picks per version and which
    versions take each mode."""
    auto = ", ".join(f"{version} {mode}" for version, mode in AUTO_MODE.items())
    notes = []
    for mode in (m for m in MULTI_IMAGE_CHOICES if m != AUTO):
        versions = [version for version, modes in MULTI_IMAGE_MODES.items() if mode in modes]
        notes.append(f"{mode}: every version" if len(versions) == len(MULTI_IMAGE_MODES)
                     else f"{mode}: {' and '.join(versions)} only")
    return (f"How several photos are combined. {AUTO}: the official rule of the model version ({auto}). "
            f"{'; '.join(notes)}.")


class PuLIDSDXLEncodeFace:
    SEARCH_ALIASES = aliases.FACE_ID + ['encode face', 'face embedding', 'face photo', 'reference face']
    OUTPUT_TOOLTIPS = (
        'The identity of the face(s), for Apply PuLID (SDXL) or Save PuLID Embeddings (SDXL).',
        'Per photo: the aligned face and the masked face the encoder saw.',
    )
    DESCRIPTION = ("Finds the face in each image of the batch (several photos of the same person) and turns "
                   "them into PuLID ID embeddings. Weight, method, start/end and masks live on the Apply node, "
                   "so changing them never re-runs this node. The second output previews the aligned crops "
                   "and the masked faces the encoders saw.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("PULID_SDXL_EMBEDS", "IMAGE")
    RETURN_NAMES = ("embeds", "face_preview")
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pulid_model": ("PULID_SDXL_MODEL", {"tooltip": "From Load PuLID Model (SDXL); its version decides the embedding format."}),
            "face_encoder": ("PULID_SDXL_FACE_ENCODER", {"tooltip": "From Load PuLID Face Encoder (SDXL)."}),
            "image": ("IMAGE", {"tooltip": "One or more photos of the same person (a batch); each must show the face."}),
            "face": (list(FACE_CHOICES), {
                "default": FACE_CHOICES[0],
                "tooltip": "Which face to use when a photo shows several: the largest, or the n-th from the "
                           "left, from the top or by size."}),
            "multi_image": (list(MULTI_IMAGE_CHOICES), {
                "default": AUTO,
                "tooltip": multi_image_tooltip()}),
            "noise": ("FLOAT", {
                "default": 0.0, "min": 0.0, "max": 1.0, "step": 0.01,
                "tooltip": "Uniform noise for the negative (uncond) embedding instead of zeros; 0 is the "
                           "official behaviour. Small values can loosen the likeness."}),
            "skip_faceless": ("BOOLEAN", {
                "default": False,
                "tooltip": "On: photos without a detectable face are skipped (logged). Off: such a photo is an "
                           "error naming its index."}),
        }}

    def encode(self, pulid_model, face_encoder, image, face, multi_image, noise, skip_faceless):
        encoder = face_encoder.encoder
        id_conds, vit_hiddens, previews, skipped = [], [], [], []
        bar = runtime.progress(len(image))
        runtime.load_models(face_encoder.patcher, pulid_model.patcher)
        for index in range(len(image)):
            runtime.check_interrupted()
            try:
                features = encoder.encode(image[index].cpu().numpy(), face=face, image_index=index)
            except FaceNotFoundError:
                if not skip_faceless:
                    raise
                log.warning("PuLID: no face in image %d, skipped", index)
                skipped.append(index)
            else:
                id_conds.append(features.id_cond)
                vit_hiddens.append(features.vit_hidden)
                previews += [features.aligned, features.masked]
            bar.update(1)
        if not id_conds:
            raise FaceNotFoundError(
                f"No face found in any of the {len(image)} images: use photos where the face is clearly "
                f"visible, front-facing and not too small.", image_index=None)
        embeds = encode_identity(pulid_model.model, id_conds, vit_hiddens, multi_image=multi_image,
                                 noise=noise)
        if skipped:
            embeds.metadata["skipped_images"] = ",".join(map(str, skipped))
        preview = torch.from_numpy(np.stack(previews).astype(np.float32) / 255.0)
        return (embeds, preview)
