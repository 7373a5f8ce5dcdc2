"""ComfyUI nodes of the pack: thin adapters over `pulid`; ComfyUI is reached only through `folders.py`
(model folders), `runtime.py` (device, model management, progress) and `patch.py` (the model patch).

Node ids, input names and widget order are a public contract: saved workflows refer to them.
"""
from . import folders
from .assign import PuLIDSDXLAssignFace
from .apply import PuLIDSDXLApply, PuLIDSDXLApplyAdvanced
from .best import PuLIDSDXLBestByLikeness
from .embeds import PuLIDSDXLLoadEmbeds, PuLIDSDXLSaveEmbeds
from .encode import PuLIDSDXLEncodeFace
from .evaluate import PuLIDSDXLEvaluate
from .loaders import PuLIDSDXLFaceEncoderLoader, PuLIDSDXLModelLoader
from .regions import PuLIDSDXLCropFace, PuLIDSDXLFaceMask, PuLIDSDXLPasteFace
from .similarity import PuLIDSDXLFaceSimilarity

NODE_CLASS_MAPPINGS = {
    "PuLIDSDXLModelLoader": PuLIDSDXLModelLoader,
    "PuLIDSDXLFaceEncoderLoader": PuLIDSDXLFaceEncoderLoader,
    "PuLIDSDXLEncodeFace": PuLIDSDXLEncodeFace,
    "PuLIDSDXLApply": PuLIDSDXLApply,
    "PuLIDSDXLApplyAdvanced": PuLIDSDXLApplyAdvanced,
    "PuLIDSDXLSaveEmbeds": PuLIDSDXLSaveEmbeds,
    "PuLIDSDXLLoadEmbeds": PuLIDSDXLLoadEmbeds,
    "PuLIDSDXLFaceSimilarity": PuLIDSDXLFaceSimilarity,
    "PuLIDSDXLEvaluate": PuLIDSDXLEvaluate,
    "PuLIDSDXLFaceMask": PuLIDSDXLFaceMask,
    "PuLIDSDXLCropFace": PuLIDSDXLCropFace,
    "PuLIDSDXLPasteFace": PuLIDSDXLPasteFace,
    "PuLIDSDXLBestByLikeness": PuLIDSDXLBestByLikeness,
    "PuLIDSDXLAssignFace": PuLIDSDXLAssignFace,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "PuLIDSDXLModelLoader": "Load PuLID Model (SDXL)",
    "PuLIDSDXLFaceEncoderLoader": "Load PuLID Face Encoder (SDXL)",
    "PuLIDSDXLEncodeFace": "Encode Face (PuLID SDXL)",
    "PuLIDSDXLApply": "Apply PuLID (SDXL)",
    "PuLIDSDXLApplyAdvanced": "Apply PuLID Advanced (SDXL)",
    "PuLIDSDXLSaveEmbeds": "Save PuLID Embeddings (SDXL)",
    "PuLIDSDXLLoadEmbeds": "Load PuLID Embeddings (SDXL)",
    "PuLIDSDXLFaceSimilarity": "Face Similarity (PuLID SDXL)",
    "PuLIDSDXLEvaluate": "Evaluate PuLID Batch (SDXL)",
    "PuLIDSDXLFaceMask": "PuLID Face Mask (SDXL)",
    "PuLIDSDXLCropFace": "PuLID Crop Face (SDXL)",
    "PuLIDSDXLPasteFace": "PuLID Paste Face (SDXL)",
    "PuLIDSDXLBestByLikeness": "PuLID Best by Likeness (SDXL)",
    "PuLIDSDXLAssignFace": "PuLID Assign Face (SDXL)",
}

folders.register_folders()
