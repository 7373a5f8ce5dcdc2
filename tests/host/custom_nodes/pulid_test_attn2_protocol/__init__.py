"""Test-only stand-in for the packs that share ComfyUI's duck-typed attn2 protocol (IPAdapter_plus,
InstantID, cubiq's PuLID): at every SDXL cross-attention key it registers its own replace, or, when a
replace is already there, calls `existing.add(callback, **kwargs)`; the replace adds
`callback(out, q, k, v, extra_options, **kwargs)` while sigma_end <= sigma <= sigma_start.
Written from that protocol for the host tests; its term depends on q only, so with PuLID's ortho off
both orders must give the same sum.
"""
import torch
from comfy.ldm.modules.attention import optimized_attention

KEYS = ([("input", b, i) for b in (4, 5) for i in range(2)] + [("input", b, i) for b in (7, 8) for i in range(10)]
        + [("output", b, i) for b in (0, 1, 2) for i in range(10)] + [("output", b, i) for b in (3, 4, 5)
                                                                      for i in range(2)]
        + [("middle", 0, i) for i in range(10)])


def term(out, q, k, v, extra_options, scale=0.0, **kwargs):
    return scale * torch.tanh(q)


class ProtocolReplace:
    def __init__(self, callback, **kwargs):
        self.callbacks = [(callback, kwargs)]

    def add(self, callback, **kwargs):
        self.callbacks.append((callback, kwargs))

    def __call__(self, q, k, v, extra_options):
        out = optimized_attention(q, k, v, extra_options["n_heads"])
        sigma = extra_options["sigmas"].detach().cpu()[0].item() if "sigmas" in extra_options else 1e9
        for callback, kwargs in self.callbacks:
            if kwargs["sigma_end"] <= sigma <= kwargs["sigma_start"]:
                out = out + callback(out, q, k, v, extra_options, **kwargs)
        return out


class PuLIDTestAttn2Protocol:
    CATEGORY = "pulid_test"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "patch"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "scale": ("FLOAT", {"default": 0.5, "min": -10, "max": 10})}}

    def patch(self, model, scale):
        model = model.clone()
        sampling = model.get_model_object("model_sampling")
        kwargs = {"scale": scale, "sigma_start": sampling.percent_to_sigma(0.0),
                  "sigma_end": sampling.percent_to_sigma(1.0)}
        options = model.model_options["transformer_options"].copy()
        options["patches_replace"] = dict(options.get("patches_replace", {}))
        attn2 = options["patches_replace"]["attn2"] = dict(options["patches_replace"].get("attn2", {}))
        for key in KEYS:
            if key in attn2:
                attn2[key].add(term, **kwargs)
            else:
                attn2[key] = ProtocolReplace(term, **kwargs)
        model.model_options["transformer_options"] = options
        return (model,)


class IPAdapterStandIn(PuLIDTestAttn2Protocol):
    """The IP-Adapter-like node of the cubiq workflows the migration tests build (testkit/cubiq_workflows.py)."""

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"model": ("MODEL",), "image": ("IMAGE",),
                             "weight": ("FLOAT", {"default": 0.5, "min": -10, "max": 10})}}

    def patch(self, model, image, weight):
        return super().patch(model, weight)


NODE_CLASS_MAPPINGS = {"PuLIDTestAttn2Protocol": PuLIDTestAttn2Protocol, "IPAdapterStandIn": IPAdapterStandIn}
