"""Node ids, custom types and display names other PuLID packs register, read from their public source.

ComfyUI keeps one global table of node ids (and types are matched by name), so any overlap with ours
silently breaks one pack. Read at these commits (HEAD of each repository's stored snapshot):
cubiq/PuLID_ComfyUI 4e1fd402 (__init__.py, pulid.py), lldacing/ComfyUI_PuLID_Flux_ll ba90657f,
balazik/ComfyUI-PuLID-Flux a80912fc, sipie800/ComfyUI-PuLID-Flux-Enhanced 04e1b523 (__init__.py,
pulidflux.py), iFayens/ComfyUI-PuLID-Flux2 cefdff87 (__init__.py, pulid_flux2.py).
"""

PACKS = {
    "cubiq/PuLID_ComfyUI": {
        "ids": {"PulidModelLoader": "Load PuLID Model", "PulidInsightFaceLoader": "Load InsightFace (PuLID)",
                "PulidEvaClipLoader": "Load Eva Clip (PuLID)", "ApplyPulid": "Apply PuLID",
                "ApplyPulidAdvanced": "Apply PuLID Advanced"},
        "types": {"PULID", "FACEANALYSIS", "EVA_CLIP"},
    },
    "lldacing/ComfyUI_PuLID_Flux_ll": {
        "ids": {"PulidFluxModelLoader": "Load PuLID Flux Model",
                "PulidFluxInsightFaceLoader": "Load InsightFace (PuLID Flux)",
                "PulidFluxEvaClipLoader": "Load Eva Clip (PuLID Flux)", "ApplyPulidFlux": "Apply PuLID Flux",
                "FixPulidFluxPatch": "Fix PuLID Flux Patch", "PulidFluxOptions": "Pulid Flux Options",
                "PulidFluxFaceDetector": "Pulid Flux Face Detector"},
        "types": {"PULIDFLUX", "FACEANALYSIS", "EVA_CLIP", "OPTIONS"},
    },
    "balazik/ComfyUI-PuLID-Flux": {
        "ids": {"PulidFluxModelLoader": "Load PuLID Flux Model",
                "PulidFluxInsightFaceLoader": "Load InsightFace (PuLID Flux)",
                "PulidFluxEvaClipLoader": "Load Eva Clip (PuLID Flux)", "ApplyPulidFlux": "Apply PuLID Flux"},
        "types": {"PULIDFLUX", "FACEANALYSIS", "EVA_CLIP"},
    },
    "sipie800/ComfyUI-PuLID-Flux-Enhanced": {
        "ids": {"PulidFluxModelLoader": "Load PuLID Flux Model",
                "PulidFluxInsightFaceLoader": "Load InsightFace (PuLID Flux)",
                "PulidFluxEvaClipLoader": "Load Eva Clip (PuLID Flux)", "ApplyPulidFlux": "Apply PuLID Flux"},
        "types": {"PULIDFLUX", "FACEANALYSIS", "EVA_CLIP"},
    },
    "iFayens/ComfyUI-PuLID-Flux2": {
        "ids": {"PuLIDInsightFaceLoader": "Load InsightFace (PuLID)", "PuLIDEVACLIPLoader": "Load EVA-CLIP (PuLID)",
                "PuLIDModelLoader": "Load PuLID ✦ Flux.2", "ApplyPuLIDFlux2": "Apply PuLID ✦ Flux.2",
                "PuLIDFacePreview": "PuLID — Face Preview"},
        "types": {"PULID_MODEL", "INSIGHTFACE", "EVA_CLIP"},
    },
}

# The ids and types ours had before they got their own prefix (never published): a reminder of the clash.
OUR_FORMER_IDS = {"PuLIDModelLoader", "PuLIDFaceEncoderLoader", "PuLIDEncodeFace", "PuLIDApply",
                  "PuLIDApplyAdvanced", "PuLIDSaveEmbeds", "PuLIDLoadEmbeds", "PuLIDFaceSimilarity"}
OUR_FORMER_TYPES = {"PULID_MODEL", "PULID_FACE_ENCODER", "PULID_EMBEDS"}
