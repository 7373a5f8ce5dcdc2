"""Loader nodes: the PuLID checkpoint and the face pipeline (EVA-CLIP, insightface, facexlib)."""
from ..pulid.catalog import EVA_CLIP, PULID_V1, PULID_V1_1
from ..pulid.checkpoint import load_pulid_model
from . import aliases, folders, runtime

CATEGORY = "PuLID"
PROVIDERS = ("auto", "CPU", "CUDA", "ROCM", "CoreML", "DirectML")
"""onnxruntime choices of the face encoder loader; the library maps them and explains missing ones."""


class PuLIDSDXLModelLoader:
    SEARCH_ALIASES = aliases.FACE_ID + ['pulid model', 'pulid loader', 'pulid v1.1', 'ip-adapter pulid']
    OUTPUT_TOOLTIPS = (
        'The PuLID model, for Encode Face and Apply PuLID (SDXL).',
    )
    DESCRIPTION = ("Loads a PuLID-SDXL checkpoint (v1 .bin or v1.1 .safetensors, official or IP-Adapter "
                   "layout; the version is detected from the file) from models/pulid.")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("PULID_SDXL_MODEL",)
    RETURN_NAMES = ("pulid_model",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "pulid_file": (folders.pulid_files(), {
                "tooltip": f"PuLID checkpoint in models/{PULID_V1_1.folder}, e.g. {PULID_V1_1.filename} "
                           f"(recommended) or {PULID_V1.filename}."}),
        }}

    def load(self, pulid_file):
        model = load_pulid_model(folders.pulid_path(pulid_file))
        return (runtime.PulidModelHandle(model=model, patcher=runtime.managed(model.encoder)),)


class PuLIDSDXLFaceEncoderLoader:
    SEARCH_ALIASES = aliases.FACE_ID + ['insightface', 'antelopev2', 'eva clip', 'face analysis', 'facexlib']
    OUTPUT_TOOLTIPS = (
        'The face models (insightface, facexlib, EVA-CLIP), for Encode Face and Face Similarity.',
    )
    DESCRIPTION = ("Loads the face pipeline PuLID encodes faces with: EVA-CLIP (face features), insightface "
                   "(detection and identity) and facexlib (alignment and face parsing, from models/facexlib).")
    CATEGORY = CATEGORY
    RETURN_TYPES = ("PULID_SDXL_FACE_ENCODER",)
    RETURN_NAMES = ("face_encoder",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "eva_clip_file": (folders.eva_clip_files(), {
                "default": folders.DEFAULT_EVA_CLIP_FILE,
                "tooltip": f"EVA02-CLIP-L-14-336 from models/clip_vision or models/pulid "
                           f"({EVA_CLIP.filename}; original EVA-CLIP, timm or open_clip layout)."}),
            "insightface_model": (folders.insightface_models(), {
                "default": folders.DEFAULT_INSIGHTFACE,
                "tooltip": "Folder under models/insightface/models; antelopev2 is what PuLID was trained with."}),
            "provider": (list(PROVIDERS), {
                "default": "auto",
                "tooltip": "onnxruntime device for insightface. auto picks the GPU provider your onnxruntime "
                           "build has, else CPU."}),
        }}

    def load(self, eva_clip_file, insightface_model, provider):
        from ..pulid.face import FaceEncoder

        # A path, not a loaded tower: FaceEncoder reads insightface and facexlib first, so a missing or broken
        # file there is reported before EVA-CLIP, the slowest load, has been read.
        encoder = FaceEncoder(folders.eva_clip_path(eva_clip_file), folders.insightface_dir(insightface_model),
                              folders.facexlib_dir(),
                              providers=None if provider == "auto" else provider,
                              dtype=runtime.encoder_dtype(runtime.load_device()))
        return (runtime.FaceEncoderHandle(encoder=encoder, patcher=runtime.managed(encoder.torch_modules)),)
