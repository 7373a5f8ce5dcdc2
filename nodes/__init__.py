"""ComfyUI nodes of the pack: thin adapters over `pulid`; all host calls live in `host.py`.

Node ids, input names and widget order are a public contract: saved workflows refer to them.
"""
from . import host
from .apply import PuLIDApply, PuLIDApplyAdvanced
from .embeds import PuLIDLoadEmbeds, PuLIDSaveEmbeds
from .encode import PuLIDEncodeFace
from .loaders import PuLIDFaceEncoderLoader, PuLIDModelLoader
from .similarity import PuLIDFaceSimilarity

NODE_CLASS_MAPPINGS = {
    "PuLIDModelLoader": PuLIDModelLoader,
    "PuLIDFaceEncoderLoader": PuLIDFaceEncoderLoader,
    "PuLIDEncodeFace": PuLIDEncodeFace,
    "PuLIDApply": PuLIDApply,
    "PuLIDApplyAdvanced": PuLIDApplyAdvanced,
    "PuLIDSaveEmbeds": PuLIDSaveEmbeds,
    "PuLIDLoadEmbeds": PuLIDLoadEmbeds,
    "PuLIDFaceSimilarity": PuLIDFaceSimilarity,
}

NODE_DISPLAY_NAME_MAPPINGS = {
    "PuLIDModelLoader": "Load PuLID Model",
    "PuLIDFaceEncoderLoader": "Load PuLID Face Encoder",
    "PuLIDEncodeFace": "Encode Face (PuLID)",
    "PuLIDApply": "Apply PuLID",
    "PuLIDApplyAdvanced": "Apply PuLID (Advanced)",
    "PuLIDSaveEmbeds": "Save PuLID Embeddings",
    "PuLIDLoadEmbeds": "Load PuLID Embeddings",
    "PuLIDFaceSimilarity": "Face Similarity (PuLID)",
}

host.register_folders()
