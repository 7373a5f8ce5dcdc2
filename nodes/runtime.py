"""ComfyUI's runtime as the nodes use it: the device, model management, progress bars, interruption.

The only module of nodes/ that reaches `comfy.model_management`, `comfy.model_patcher` and `comfy.utils`.
They are imported inside the functions, so the node classes stay importable without ComfyUI (the node
contract tests, the help pages and the command line read them).
"""
from dataclasses import dataclass

import torch


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
    """PULID_SDXL_FACE_ENCODER: the face pipeline plus a ModelPatcher of its torch modules.

    `clip_text` is the ModelPatcher of the EVA-CLIP text tower from the same file: None until Evaluate PuLID
    Batch first needs it (Encode Face never does), then kept here so it is read once per loaded encoder.
    """

    encoder: object
    patcher: object
    clip_text: object = None


def load_models(*patchers):
    """Have ComfyUI load the patchers' modules onto its device now; it offloads them later when VRAM is needed.

    The library reads the device from the modules' parameters, so nothing else has to follow.
    """
    import comfy.model_management as mm
    mm.load_models_gpu(list(patchers))


def progress(total):
    import comfy.utils
    return comfy.utils.ProgressBar(total)


def check_interrupted():
    import comfy.model_management as mm
    mm.throw_exception_if_processing_interrupted()

