"""Apply nodes: patch a clone of an SDXL model with PuLID's identity attention."""
import math

import torch

from ..pulid.attention import DEFAULT_WEIGHT, ORTHO_MODES, PRESETS, resolve_preset
from ..pulid.errors import PulidError
from . import aliases, patch

METHODS = tuple(PRESETS["v1"])  # fidelity, style, neutral: the same names for both versions

METHOD_EFFECTS = {
    "fidelity": "closest likeness (official defaults)",
    "style": "more zero tokens and plain orthogonal projection, leaves the prompt more room",
    "neutral": "plain addition, no zero tokens (the paper's base formulation)",
}
"""What each method of PRESETS does, for the tooltip (a KeyError when a method is added without one)."""

ORTHO_EFFECTS = {
    "off": "add the ID attention as is",
    "v1": "remove its part along the text attention",
    "v2": "remove it in proportion to how much attention goes to the face tokens",
}
"""What each of ORTHO_MODES does, for the tooltip."""


def _effects(effects, names):
    return " ".join(f"{name}: {effects[name]}." for name in names)


def preset_values(index):
    """How the methods set num_zero (index 0) or ortho (1), written from PRESETS: once where every version
    agrees, else per version. The Advanced node's tooltips state the presets with it, so they cannot drift."""
    per_version = {version: ", ".join(f"{method} {preset[index]}" for method, preset in methods.items())
                   for version, methods in PRESETS.items()}
    if len(set(per_version.values())) == 1:
        return next(iter(per_version.values()))
    return "; ".join(f"{version}: {text}" for version, text in per_version.items())


def check_numbers(weight, start_at, end_at, attn_mask):
    """NaN passes ComfyUI's min/max check (every comparison with NaN is false) and would sample an all-NaN
    image or crash deep in the sampler: say which input it is instead."""
    for name, value in (("weight", weight), ("start_at", start_at), ("end_at", end_at)):
        if not math.isfinite(float(value)):
            raise PulidError(f"Apply PuLID: {name} is {value}; set it to a number (a widget or the node feeding "
                             f"it produced NaN).")
    if attn_mask is not None and not torch.isfinite(torch.as_tensor(attn_mask)).all():
        raise PulidError("Apply PuLID: attn_mask contains NaN or infinite values; check the nodes that make the "
                         "mask.")


def _common_inputs():
    return {
        "model": ("MODEL", {"tooltip": "Any SDXL model: base, fine-tune, Lightning/Turbo/Hyper, merge, with or without LoRAs."}),
        "pulid_model": ("PULID_SDXL_MODEL", {"tooltip": "The same PuLID model the embeddings were encoded with."}),
        "embeds": ("PULID_SDXL_EMBEDS", {"tooltip": "From Encode Face (PuLID SDXL) or Load PuLID Embeddings (SDXL)."}),
        "weight": ("FLOAT", {
            "default": DEFAULT_WEIGHT["v1.1"], "min": -1.0, "max": 5.0, "step": 0.05,
            "tooltip": "Strength of the identity: 0.6 to 1.2 is the useful range, 0 leaves the model unchanged. "
                       f"The default {DEFAULT_WEIGHT['v1.1']} is the official PuLID v1.1 default, since v1.1 is "
                       f"the recommended model; v1's official default is {DEFAULT_WEIGHT['v1']}."}),
    }


def _window_inputs():
    return {
        "start_at": ("FLOAT", {
            "default": 0.0, "min": 0.0, "max": 1.0, "step": 0.001,
            "tooltip": "Fraction of the sampling schedule at which the identity starts to act (0 = first step). "
                       "Starting later lets the composition form first."}),
        "end_at": ("FLOAT", {
            "default": 1.0, "min": 0.0, "max": 1.0, "step": 0.001,
            "tooltip": "Fraction of the schedule after which it stops (1 = last step). Ending early keeps more "
                       "of the prompt's style."}),
    }


def _optional_inputs():
    return {"optional": {
        "attn_mask": ("MASK", {
            "tooltip": "Where in the picture the identity applies (white = here); one mask, or one per image "
                       "of the batch. Use two Apply nodes with complementary masks for two people."}),
    }}


class PuLIDSDXLApply:
    SEARCH_ALIASES = aliases.FACE_ID + ['apply pulid', 'face transfer', 'id customization']
    OUTPUT_TOOLTIPS = (
        'The SDXL model with the identity, for the sampler.',
    )
    DESCRIPTION = ("Gives an SDXL model the identity in the embeddings. Changing weight, method, start/end or "
                   "the mask re-patches the model only; the face is not encoded again.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        required = _common_inputs()
        required["method"] = (list(METHODS), {
            "default": "fidelity",
            "tooltip": _effects(METHOD_EFFECTS, METHODS)})
        required.update(_window_inputs())
        return {"required": required, **_optional_inputs()}

    def apply(self, model, pulid_model, embeds, weight, method, start_at, end_at, attn_mask=None):
        check_numbers(weight, start_at, end_at, attn_mask)
        num_zero, ortho = resolve_preset(pulid_model.model.version, method)
        return (patch.patch_model(model, pulid_model.model, embeds, weight, num_zero, ortho,
                                 start_at, end_at, attn_mask),)


class PuLIDSDXLApplyAdvanced:
    SEARCH_ALIASES = aliases.FACE_ID + ['apply pulid advanced', 'ortho', 'num_zero']
    OUTPUT_TOOLTIPS = (
        'The SDXL model with the identity, for the sampler.',
    )
    DESCRIPTION = ("Apply PuLID (SDXL) with the two knobs behind the methods exposed: the number of zero tokens "
                   "(dilutes the identity) and the orthogonal projection mode.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("MODEL",)
    RETURN_NAMES = ("model",)
    FUNCTION = "apply"

    @classmethod
    def INPUT_TYPES(cls):
        required = _common_inputs()
        required.update(_window_inputs())
        required["num_zero"] = ("INT", {
            "default": PRESETS["v1.1"]["fidelity"][0], "min": 0, "max": 80, "step": 1,
            "tooltip": "Zero tokens appended to the ID tokens: more = weaker identity, more prompt control. "
                       f"Apply PuLID (SDXL)'s methods use {preset_values(0)}."})
        required["ortho"] = (list(ORTHO_MODES), {
            "default": PRESETS["v1.1"]["fidelity"][1],
            "tooltip": f"{_effects(ORTHO_EFFECTS, ORTHO_MODES)} Apply PuLID (SDXL)'s methods use "
                       f"{preset_values(1)}."})
        return {"required": required, **_optional_inputs()}

    def apply(self, model, pulid_model, embeds, weight, start_at, end_at, num_zero, ortho, attn_mask=None):
        check_numbers(weight, start_at, end_at, attn_mask)
        return (patch.patch_model(model, pulid_model.model, embeds, weight, num_zero, ortho,
                                 start_at, end_at, attn_mask),)
