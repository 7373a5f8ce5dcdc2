"""cubiq's PuLID_ComfyUI as migrate reads it, and what each of its nodes becomes here.

cubiq's pack has five nodes: PulidModelLoader, PulidEvaClipLoader, PulidInsightFaceLoader, ApplyPulid and
ApplyPulidAdvanced, its apply nodes encoding the face photo at every run; this pack encodes a face once (Encode
Face) and applies it (Apply). The tables here name both sides' sockets and widgets in their order, and
apply_values turns one cubiq apply node's settings into ours, noting what has no exact equivalent.
"""
from dataclasses import dataclass

CUBIQ_NODES = ("PulidModelLoader", "PulidEvaClipLoader", "PulidInsightFaceLoader", "ApplyPulid", "ApplyPulidAdvanced")
TYPES = {"PULID": "PULID_SDXL_MODEL", "FACEANALYSIS": "PULID_SDXL_FACE_ENCODER"}
PROJECTION = {"ortho_v2": "v2", "ortho": "v1", "none": "off"}
ENCODE_DEFAULTS = {"face": "largest", "multi_image": "auto", "skip_faceless": False}

# cubiq's widgets in their order (its pulid.py).
CUBIQ_WIDGETS = {"ApplyPulid": ("method", "weight", "start_at", "end_at"),
                 "ApplyPulidAdvanced": ("weight", "projection", "fidelity", "noise", "start_at", "end_at"),
                 "PulidInsightFaceLoader": ("provider",), "PulidModelLoader": ("pulid_file",)}
OUR_TYPE = {"PulidModelLoader": "PuLIDSDXLModelLoader", "PulidInsightFaceLoader": "PuLIDSDXLFaceEncoderLoader",
            "ApplyPulid": "PuLIDSDXLApply", "ApplyPulidAdvanced": "PuLIDSDXLApplyAdvanced"}
# an input of our apply nodes -> the input of cubiq's whose link it takes over
CUBIQ_INPUT = {"model": "model", "pulid_model": "pulid", "attn_mask": "attn_mask"}


@dataclass(frozen=True)
class Ours:
    """One of our nodes as a saved graph holds it: its sockets and outputs as (name, type) and its widgets by
    name, each in the node's order. The UI stores widget values by position, so these are the nodes' public
    contract, restated here because this tool runs without the pack's torch side; tests/test_migrate.py
    checks them against the nodes' INPUT_TYPES and RETURN_TYPES."""

    inputs: tuple
    widgets: tuple
    outputs: tuple

    def output_index(self, name):
        """The place of output `name`: an API prompt's links address outputs by place."""
        return [output for output, _ in self.outputs].index(name)


_APPLY_INPUTS = (("model", "MODEL"), ("pulid_model", "PULID_SDXL_MODEL"), ("embeds", "PULID_SDXL_EMBEDS"),
                 ("attn_mask", "MASK"))
OURS = {
    "PuLIDSDXLModelLoader": Ours((), ("pulid_file",), (("pulid_model", "PULID_SDXL_MODEL"),)),
    "PuLIDSDXLFaceEncoderLoader": Ours((), ("eva_clip_file", "insightface_model", "provider"),
                                       (("face_encoder", "PULID_SDXL_FACE_ENCODER"),)),
    "PuLIDSDXLEncodeFace": Ours((("pulid_model", "PULID_SDXL_MODEL"), ("face_encoder", "PULID_SDXL_FACE_ENCODER"),
                                 ("image", "IMAGE")), ("face", "multi_image", "noise", "skip_faceless"),
                                (("embeds", "PULID_SDXL_EMBEDS"), ("face_preview", "IMAGE"))),
    "PuLIDSDXLApply": Ours(_APPLY_INPUTS, ("weight", "method", "start_at", "end_at"), (("model", "MODEL"),)),
    "PuLIDSDXLApplyAdvanced": Ours(_APPLY_INPUTS, ("weight", "start_at", "end_at", "num_zero", "ortho"),
                                   (("model", "MODEL"),)),
}
ALWAYS = ("cubiq's ortho_v2 (method fidelity, projection ortho_v2) differs from the official PuLID math this "
          "pack uses, so the same settings can give a slightly different likeness.",)


def _noise(value, notes, where):
    """cubiq's noise as Encode Face's (0..1), noting the difference."""
    if value < 0 or value > 1:
        notes.append(f"{where}: noise {value} is outside 0..1 here; Encode Face got {min(abs(value), 1.0)}.")
        return min(abs(value), 1.0)
    if value:
        notes.append(f"{where}: noise {value} moved to Encode Face; cubiq also filled the zero tokens with noise, "
                     f"this pack keeps them zero (the official form).")
    return value


def apply_values(kind, values, notes, where):
    """{our widget: value} and the Encode Face noise from a cubiq apply node's {widget: value}."""
    ours = {"weight": values.get("weight", 1.0), "start_at": values.get("start_at", 0.0),
            "end_at": values.get("end_at", 1.0)}
    if kind == "ApplyPulid":
        ours["method"] = values.get("method", "fidelity")
        return ours, 0.0
    projection = values.get("projection", "ortho_v2")
    ours["ortho"] = PROJECTION.get(projection, "v2")
    if projection not in PROJECTION:
        notes.append(f"{where}: projection {projection!r} is unknown; ortho set to v2.")
    ours["num_zero"] = int(values.get("fidelity", 8))
    return ours, _noise(float(values.get("noise", 0.0)), notes, where)
