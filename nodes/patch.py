"""Patching an SDXL model: the check that it is one, and the attn2 replaces (attn2.py) set on a clone.

The only module of nodes/ that reaches `comfy.patcher_extension` and ComfyUI's attention; attn2.py, the
replace itself, gets ComfyUI's attention function and the sigma window from here, so it runs on plain
tensors in the tests. ComfyUI is imported inside the functions, as the node classes stay importable
without it.
"""
import logging

from ..pulid.errors import PulidError
from ..pulid.sites import CONTEXT_DIM
from .attn2 import SigmaWindow, build_patches

log = logging.getLogger(__name__)

SDXL_MODEL_CHANNELS = 320
SDXL_TRANSFORMER_DEPTH = [0, 0, 2, 2, 10, 10]


def check_sdxl(model):
    """Raise PulidError unless `model` is an SDXL-architecture UNet (base, fine-tune, distill, merge)."""
    base = getattr(model, "model", None)
    config = getattr(base, "model_config", None)
    unet = dict(getattr(config, "unet_config", None) or {})
    name = type(config).__name__ if config is not None else type(base).__name__
    context_dim = unet.get("context_dim")
    if context_dim == CONTEXT_DIM and unet.get("model_channels") == SDXL_MODEL_CHANNELS:
        depth = list(unet.get("transformer_depth") or [])[:6]
        if depth and depth != SDXL_TRANSFORMER_DEPTH:
            # SSD-1B, Segmind Vega and other distills keep SDXL's widths with fewer transformer layers:
            # the sites they have get the weights PuLID trained for SDXL's layer of that name.
            log.warning("PuLID: %s has transformer depths %s instead of SDXL's %s (a distilled SDXL such as "
                        "SSD-1B or Vega); PuLID was trained on the full SDXL UNet, so the likeness may be weak.",
                        name, depth, SDXL_TRANSFORMER_DEPTH)
        return
    hint = ""
    if context_dim == 1280:
        hint = " (the SDXL refiner: apply PuLID to the base model instead)"
    raise PulidError(
        f"PuLID SDXL needs an SDXL model, but this model is {name} with context_dim={context_dim}, "
        f"model_channels={unet.get('model_channels')}{hint}. Load an SDXL checkpoint "
        f"(base, a fine-tune, Lightning/Turbo/Hyper or a merge).")


def attention_function():
    """ComfyUI's attention for the current settings (xformers, sage, pytorch, split...), looked up once.

    It is called with the site's transformer options, as ComfyUI's own cross-attention does, so an
    `optimized_attention_override` another node installed still applies at PuLID's sites.
    """
    from comfy.ldm.modules.attention import optimized_attention

    def attention(q, k, v, heads, attn_precision=None, transformer_options=None):
        return optimized_attention(q, k, v, heads, attn_precision=attn_precision,
                                   transformer_options=transformer_options or {})

    return attention


def window_check(window):
    """An OUTER_SAMPLE wrapper that warns in ComfyUI's log when the sampled steps miss the window: at denoise d a
    sampler samples only the schedule after 1 - d, which start_at/end_at know nothing of. (A node's own text on the
    canvas would need ComfyUI's server module, which the pack never imports.)"""
    def check(executor, noise, latent_image, sampler, sigmas, *args, **kwargs):
        sampling = executor.class_obj.model_patcher.get_model_object("model_sampling")
        window.resolve(sampling)
        if window.missed_by(sigmas):
            log.warning("%s", window.missed_text(sigmas, sampling))
        return executor(noise, latent_image, sampler, sigmas, *args, **kwargs)

    return check


def patch_model(model, pulid, embeds, weight, num_zero, ortho, start_at, end_at, mask=None):
    """A clone of `model` with the identity term at all 70 SDXL cross-attention sites."""
    import comfy.patcher_extension

    check_sdxl(model)
    if start_at > end_at:
        raise PulidError(f"start_at ({start_at}) must not be after end_at ({end_at}).")
    window = SigmaWindow.from_fractions(start_at, end_at, model.get_model_object("model_sampling"))
    patched = model.clone()
    existing = patched.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn2", {})
    patches = build_patches(
        pulid, embeds, weight=weight, num_zero=num_zero, ortho=ortho, window=window,
        attention=attention_function(), mask=mask, existing=dict(existing))
    for (block, number, index), patch in patches.items():
        patched.set_model_attn2_replace(patch, block, number, index)
    # Sampling starts from whatever clone a later node made (a ModelSampling* node changes the schedule):
    # the window is resolved again from that model's sampling, so node order does not matter.
    patched.add_callback_with_key(comfy.patcher_extension.CallbacksMP.ON_PRE_RUN, "pulid_sdxl",
                                  lambda sampled: window.resolve(sampled.get_model_object("model_sampling")))
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, "pulid_sdxl",
                                 window_check(window))
    log.info("PuLID %s applied at %d sites (weight %s, num_zero %d, ortho %s), chained over %d existing",
             pulid.version, len(patches), weight, num_zero, ortho, sum(k in existing for k in patches))
    return patched
