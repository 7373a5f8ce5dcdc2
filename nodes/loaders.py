"""Loader nodes: the PuLID checkpoint and the face pipeline (EVA-CLIP, insightface, facexlib)."""
from ..pulid.checkpoint import load_pulid_model
from . import aliases, host

CATEGORY = "PuLID"


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
            "pulid_file": (host.pulid_files(), {
                "tooltip": "PuLID checkpoint in models/pulid, e.g. pulid_v1.1.safetensors (recommended) or pulid_v1.bin."}),
        }}

    def load(self, pulid_file):
        model = load_pulid_model(host.pulid_path(pulid_file))
        return (host.PulidModelHandle(model=model, patcher=host.managed(model.encoder)),)


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
            "eva_clip_file": (host.eva_clip_files(), {
                "default": host.DEFAULT_EVA_CLIP_FILE,
                "tooltip": "EVA02-CLIP-L-14-336 from models/clip_vision or models/pulid "
                           "(EVA02_CLIP_L_336_psz14_s6B.pt; original EVA-CLIP, timm or open_clip layout)."}),
            "insightface_model": (host.insightface_models(), {
                "default": host.DEFAULT_INSIGHTFACE,
                "tooltip": "Folder under models/insightface/models; antelopev2 is what PuLID was trained with."}),
            "provider": (list(host.PROVIDERS), {
                "default": "auto",
                "tooltip": "onnxruntime device for insightface. auto picks the GPU provider your onnxruntime "
                           "build has, else CPU."}),
        }}

    def load(self, eva_clip_file, insightface_model, provider):
        from ..pulid.face import FaceEncoder

        # A path, not a loaded tower: FaceEncoder reads insightface and facexlib first, so a missing or broken
        # file there is reported before EVA-CLIP, the slowest load, has been read.
        encoder = FaceEncoder(host.eva_clip_path(eva_clip_file), host.insightface_dir(insightface_model),
                              host.facexlib_dir(),
                              providers=None if provider == "auto" else provider,
                              dtype=host.encoder_dtype(host.load_device()))
        return (host.FaceEncoderHandle(encoder=encoder, patcher=host.managed(encoder.torch_modules)),)
