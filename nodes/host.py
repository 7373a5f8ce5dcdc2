"""Every call into ComfyUI made by this pack: model folders, device management, progress, the patch.

The node classes stay importable without ComfyUI (the node contract tests and the command line run
without it), so ComfyUI modules are imported inside the functions that need them; file lists fall
back to empty when ComfyUI is absent.
"""
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..pulid.errors import ModelFileError, PulidError
from ..pulid.face import antelopev2_not_found, antelopev2_paths
from .attn2 import SigmaWindow, build_patches

log = logging.getLogger(__name__)

PULID_EXTENSIONS = {".bin", ".safetensors", ".pt", ".pth"}
EMBEDS_FOLDER = "pulid_sdxl_embeds"
"""The models folder of saved embeddings (models/pulid_sdxl_embeds), a name no other pack uses: the other
PuLID packs list models/pulid recursively and would offer embeddings kept there as model files."""
LEGACY_EMBEDS_SUBFOLDER = "embeds"
"""models/pulid/embeds, where the first release saved embeddings: still listed and loaded, never written."""
EMBEDS_EXTENSION = ".safetensors"
FETCH_HINT = "python -m pulid fetch-models --models-dir <ComfyUI>/models"

# Shown when a folder is still empty, so the node runs into an error that says what to download
# instead of the host's bare "value not in list".
DEFAULT_PULID_FILE = "pulid_v1.1.safetensors"
DEFAULT_EVA_CLIP_FILE = "EVA02_CLIP_L_336_psz14_s6B.pt"
DEFAULT_INSIGHTFACE = "antelopev2"

PROVIDERS = ("auto", "CPU", "CUDA", "ROCM", "CoreML", "DirectML")
"""onnxruntime choices of the face encoder loader; the library maps them and explains missing ones."""


def _folder_paths():
    try:
        import folder_paths
    except ImportError:
        return None
    return folder_paths


# --- model folders -----------------------------------------------------------------------------

def register_folders():
    """models/pulid, models/facexlib, models/insightface and models/pulid_sdxl_embeds (+ the legacy
    models/pulid/embeds), merged with any extra_model_paths entry."""
    fp = _folder_paths()
    if fp is None:
        return
    for name, extensions in (("pulid", PULID_EXTENSIONS), ("facexlib", set()), ("insightface", set()),
                             (EMBEDS_FOLDER, {EMBEDS_EXTENSION})):
        fp.add_model_folder_path(name, os.path.join(fp.models_dir, name))
        paths, known = fp.folder_names_and_paths[name]
        # Another pack may have registered the same name with its own extensions: keep theirs too.
        fp.folder_names_and_paths[name] = (paths, set(known) | extensions)
    for pulid_root in list(fp.get_folder_paths("pulid")):
        legacy = os.path.join(pulid_root, LEGACY_EMBEDS_SUBFOLDER)
        if legacy not in fp.get_folder_paths(EMBEDS_FOLDER):
            fp.folder_names_and_paths[EMBEDS_FOLDER][0].append(legacy)


def _files(folder):
    fp = _folder_paths()
    if fp is None or folder not in fp.folder_names_and_paths:
        return []
    return list(fp.get_filename_list(folder))


def _is_embeds(name):
    return name.replace("\\", "/").startswith(LEGACY_EMBEDS_SUBFOLDER + "/")


class Installed(list):
    """Combo choices read from the model folders: a plain list to ComfyUI, marked because they differ per
    install, so the help pages (tools/help_pages.py) say where they come from instead of listing them."""


def pulid_files():
    files = [f for f in _files("pulid") if not _is_embeds(f)]
    return Installed(files or [DEFAULT_PULID_FILE])


def eva_clip_files():
    files = sorted(set(_files("clip_vision")) | {f for f in _files("pulid") if not _is_embeds(f)})
    return Installed(files or [DEFAULT_EVA_CLIP_FILE])


NO_EMBEDS = "(no saved embeddings yet)"


def embeds_files():
    files = [f for f in _files(EMBEDS_FOLDER) if f.endswith(EMBEDS_EXTENSION)]
    return Installed(files or [NO_EMBEDS])


def _folders_text(folder):
    fp = _folder_paths()
    paths = fp.get_folder_paths(folder) if fp is not None and folder in fp.folder_names_and_paths else []
    return ", ".join(paths) or f"models/{folder}"


def _full_path(folders, name, what):
    fp = _folder_paths()
    for folder in folders:
        if fp is not None and folder in fp.folder_names_and_paths:
            path = fp.get_full_path(folder, name)
            if path:
                return path
    where = "; ".join(_folders_text(f) for f in folders)
    raise ModelFileError(f"{what} {name!r} was not found in {where}. Download it there, e.g. with `{FETCH_HINT}`.")


def pulid_path(name):
    return _full_path(["pulid"], name, "PuLID model file")


def eva_clip_path(name):
    return _full_path(["clip_vision", "pulid"], name, "EVA-CLIP file")


def embeds_path(name):
    if name == NO_EMBEDS:
        raise ModelFileError(f"No saved PuLID embeddings in {embeds_save_dir()}. Run a graph with Save PuLID "
                             f"Embeddings (SDXL) once (e.g. the pulid_save_embeds workflow), then reload this node.")
    return _full_path([EMBEDS_FOLDER], name, "Saved PuLID embedding")


def embeds_save_dir():
    fp = _folder_paths()
    if fp is None or EMBEDS_FOLDER not in fp.folder_names_and_paths:
        return os.path.join("models", EMBEDS_FOLDER)
    return fp.get_folder_paths(EMBEDS_FOLDER)[0]


def _model_roots(folder):
    fp = _folder_paths()
    if fp is None or folder not in fp.folder_names_and_paths:
        return []
    return list(fp.get_folder_paths(folder))


def insightface_models():
    names = set()
    for root in _model_roots("insightface"):
        models = os.path.join(root, "models")
        if os.path.isdir(models):
            names.update(d for d in os.listdir(models) if os.path.isdir(os.path.join(models, d)))
    # antelopev2 first: it is what PuLID was trained with, and the default of the widget.
    return Installed([DEFAULT_INSIGHTFACE] + sorted(names - {DEFAULT_INSIGHTFACE}))


def insightface_dir(name):
    """models/insightface/models/<name> (or its <name>/<name> child, as the zip unpacks) holding the antelopev2
    files, in the first models root that has them; else the first such folder that exists, so the face encoder's
    error names it and the files it lacks. Every case words the error with `face.antelopev2_not_found`."""
    folders = [os.path.join(root, "models", name) for root in _model_roots("insightface")]
    for folder in folders:
        paths = antelopev2_paths(folder)
        if paths is not None:
            return os.path.dirname(paths[0])
    for folder in folders:
        if os.path.isdir(folder):
            return folder
    raise antelopev2_not_found(", ".join(folders) or f"models/insightface/models/{name}")


def facexlib_dir():
    """The first models/facexlib folder that holds .pth files (else the first one, for the error)."""
    roots = _model_roots("facexlib")
    for root in roots:
        if os.path.isdir(root) and any(f.endswith(".pth") for f in os.listdir(root)):
            return root
    if roots:
        return roots[0]
    raise ModelFileError(f"No models/facexlib folder is registered. Download the facexlib weights with `{FETCH_HINT}`.")


# --- devices and model management ---------------------------------------------------------------

def load_device():
    import comfy.model_management as mm
    return mm.get_torch_device()


def encoder_dtype(device):
    import comfy.model_management as mm
    return torch.float16 if mm.should_use_fp16(device, prioritize_performance=False) else torch.float32


def managed(module):
    """A ModelPatcher around the torch modules of an encoder, so ComfyUI loads and offloads them."""
    import comfy.model_management as mm
    import comfy.model_patcher
    if isinstance(module, dict):
        module = torch.nn.ModuleDict(module)
    return comfy.model_patcher.ModelPatcher(module, load_device=mm.get_torch_device(),
                                            offload_device=mm.unet_offload_device())


@dataclass
class PulidModelHandle:
    """PULID_SDXL_MODEL: the loaded checkpoint plus the ModelPatcher of its ID encoder."""

    model: object
    patcher: object


@dataclass
class FaceEncoderHandle:
    """PULID_SDXL_FACE_ENCODER: the face pipeline plus a ModelPatcher of its torch modules."""

    encoder: object
    patcher: object


@contextmanager
def on_device(*patchers):
    """Have ComfyUI load the patchers' modules for the block; it offloads them when VRAM is needed.

    The library reads the device from the modules' parameters, so nothing else has to follow.
    """
    import comfy.model_management as mm
    mm.load_models_gpu(list(patchers))
    yield


def progress(total):
    import comfy.utils
    return comfy.utils.ProgressBar(total)


def check_interrupted():
    import comfy.model_management as mm
    mm.throw_exception_if_processing_interrupted()


# --- the patch ---------------------------------------------------------------------------------

SDXL_CONTEXT_DIM = 2048
SDXL_MODEL_CHANNELS = 320
SDXL_TRANSFORMER_DEPTH = [0, 0, 2, 2, 10, 10]


def check_sdxl(model):
    """Raise PulidError unless `model` is an SDXL-architecture UNet (base, fine-tune, distill, merge)."""
    base = getattr(model, "model", None)
    config = getattr(base, "model_config", None)
    unet = dict(getattr(config, "unet_config", None) or {})
    name = type(config).__name__ if config is not None else type(base).__name__
    context_dim = unet.get("context_dim")
    if context_dim == SDXL_CONTEXT_DIM and unet.get("model_channels") == SDXL_MODEL_CHANNELS:
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
    log.info("PuLID %s applied at %d sites (weight %s, num_zero %d, ortho %s), chained over %d existing",
             pulid.version, len(patches), weight, num_zero, ortho, sum(k in existing for k in patches))
    return patched
