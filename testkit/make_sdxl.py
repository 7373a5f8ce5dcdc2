"""A small SDXL-architecture checkpoint that ComfyUI's CheckpointLoaderSimple loads as SDXL.

The UNet keeps SDXL's widths (320/640/1280), block ids, context_dim 2048 and adm 2816, with the
transformer depths of Segmind Vega ([0,0,1,1,2,2], a real SDXL distill ComfyUI detects from the
state dict), middle and output depth 1: 13 of PuLID's 70 sites exist, which is what "any SDXL
architecture" has to cope with. ComfyUI builds the SDXL text encoders from fixed configs (CLIP-L
12 layers, CLIP-G 32 layers); `use_small_text_encoders` shrinks them to 3 layers in the test
process only, so the file needs no real-size text encoder. Widths and vocabulary stay real
(the pooled CLIP-G output is part of adm). The VAE is ComfyUI's fixed SD VAE.

Needs ComfyUI on sys.path (host tests only): the key layout is taken from ComfyUI's own modules.
"""
import json

import torch

TEXT_LAYERS = 3  # ComfyUI asserts |layer_idx| < layers; SDXL uses layer_idx -2
TEXT_MLP = 64

UNET_CONFIG = dict(
    use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
    num_classes="sequential", adm_in_channels=2816, in_channels=4, model_channels=320,
    num_res_blocks=[2, 2, 2], transformer_depth=[0, 0, 1, 1, 2, 2], channel_mult=[1, 2, 4],
    transformer_depth_middle=1, use_linear_in_transformer=True, context_dim=2048, num_head_channels=64,
    transformer_depth_output=[0, 0, 0, 1, 1, 1, 1, 1, 1], use_temporal_attention=False,
    use_temporal_resblock=False)

VAE_CONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
              "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def use_small_text_encoders():
    """Make ComfyUI build every CLIP text model with TEXT_LAYERS layers (idempotent, test process only)."""
    import comfy.sd1_clip

    cls = comfy.sd1_clip.SDClipModel
    if getattr(cls.__init__, "_small", False):
        return
    original = cls.__init__
    default = comfy.sd1_clip.__file__.replace("sd1_clip.py", "sd1_clip_config.json")

    def small_init(self, *args, textmodel_json_config=None, **kwargs):
        config = textmodel_json_config or default
        if isinstance(config, str):
            with open(config) as f:
                config = json.load(f)
        config = dict(config, num_hidden_layers=TEXT_LAYERS, intermediate_size=TEXT_MLP)
        original(self, *args, textmodel_json_config=config, **kwargs)

    small_init._small = True
    cls.__init__ = small_init


def _fill(name, shape, generator):
    if name.endswith("bias"):
        return torch.zeros(shape)
    if len(shape) == 1 and name.endswith("weight"):  # norm scales
        return torch.ones(shape)
    return torch.randn(shape, generator=generator) * 0.02


def _random_state(module, prefix, generator):
    return {prefix + k: _fill(k, tuple(v.shape), generator).to(torch.float16)
            for k, v in module.state_dict().items()}


def write_sdxl_checkpoint(path, seed=0, in_channels=4):
    """Write the checkpoint (fp16 safetensors, about 1 GB) with random weights. `in_channels=9` makes an
    inpainting checkpoint (latent + mask + masked-picture latent, as SDXL inpainting models take), which ComfyUI
    recognises by its first convolution's width and feeds through InpaintModelConditioning."""
    import comfy.ops
    import comfy.sdxl_clip
    import comfy.supported_models
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel
    from safetensors.torch import save_file

    use_small_text_encoders()
    generator = torch.Generator().manual_seed(seed)
    with torch.device("meta"):
        unet = UNetModel(**dict(UNET_CONFIG, in_channels=in_channels), operations=comfy.ops.disable_weight_init)
        vae = AutoencoderKL(ddconfig=VAE_CONFIG, embed_dim=4)
        clip = comfy.sdxl_clip.SDXLClipModel(dtype=torch.float32)
    state = _random_state(unet, "model.diffusion_model.", generator)
    state.update(_random_state(vae, "first_stage_model.", generator))
    config = comfy.supported_models.SDXL(dict(UNET_CONFIG, in_channels=in_channels))
    state.update(config.process_clip_state_dict_for_saving(_random_state(clip, "", generator)))
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
