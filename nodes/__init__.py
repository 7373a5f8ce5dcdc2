"""ComfyUI nodes of the pack: thin adapters over `pulid`; all host calls live in `host.py`.

Node ids, input names and widget order are a public contract: saved workflows refer to them.
"""
from . import host
from .apply import PuLIDSDXLApply, PuLIDSDXLApplyAdvanced
from .embeds import PuLIDSDXLLoadEmbeds, PuLIDSDXLSaveEmbeds
from .encode import PuLIDSDXLEncodeFace
from .loaders import PuLIDSDXLFaceEncoderLoader, PuLIDSDXLModelLoader
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
}

host.register_folders()
