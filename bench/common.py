"""Shared set-up for the benchmarks: the pack, a real-size random SDXL UNet, a PuLID model and embeds.

Benchmarks run the baseline and the PuLID variant in the same process, interleaved, and report
medians and ratios: absolute seconds depend on the machine, the ratio is what we track.
No weights can be downloaded, so every network is built at its real size with random weights.

Run each benchmark as a module from the repo root (`python -m bench.<name>`): the repo root is then on
sys.path, so `pulid` and the test helpers (`testkit`: the model writers, the pack import, the ComfyUI
runner) import as they do in the tests, with no path set-up here.
"""
import argparse
import gc
import logging
import os
import platform
import statistics
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GENERATED = os.path.join(ROOT, "bench", "_generated")

log = logging.getLogger("bench")

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def base_parser(description, needs_comfy=True, timed=True):
    """Also routes the benchmark's log lines (its results) to stdout, unadorned. `timed` benchmarks get the
    dtype they run in and their repetitions."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    if timed:
        parser.add_argument("--dtype", default="fp32", choices=sorted(DTYPES))
        parser.add_argument("--reps", type=int, default=3, help="interleaved repetitions per variant")
    if needs_comfy:
        parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"),
                            help="ComfyUI checkout (default: $COMFYUI_PATH)")
    return parser


def machine():
    cpu = platform.processor() or platform.machine()
    text = f"{os.cpu_count()} CPU cores ({cpu}), torch {torch.__version__}"
    if torch.cuda.is_available():
        text += f", {torch.cuda.get_device_name(0)}"
    return text


def start_comfy(path, device):
    """Import ComfyUI from `path` (CPU mode unless a GPU was asked for) and return the pack's nodes package."""
    if not path or not os.path.isfile(os.path.join(path, "comfy", "model_management.py")):
        sys.exit("This benchmark needs ComfyUI: pass --comfyui <checkout> or set COMFYUI_PATH.")
    from testkit import comfyui_inprocess
    from testkit.pack import pack_module

    comfyui_inprocess.import_comfyui(path, cpu=device == "cpu")
    return pack_module("nodes")


def build_sdxl(device, dtype, seed=0):
    """A ModelPatcher around a real-size SDXL base UNet (2.57 B parameters) with random weights.

    device="meta" builds the structure without memory, for benchmarks that only patch the model.
    """
    import comfy.model_base
    import comfy.model_management as mm
    import comfy.model_patcher
    import comfy.ops
    import comfy.supported_models

    unet = dict(comfy.supported_models.SDXL.unet_config)
    unet.update(use_checkpoint=False, image_size=32, out_channels=4, use_spatial_transformer=True, legacy=False,
                num_classes="sequential", in_channels=4, num_res_blocks=[2, 2, 2], channel_mult=[1, 2, 4],
                transformer_depth_middle=10, num_head_channels=64,
                transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10], use_temporal_resblock=False)
    config = comfy.supported_models.SDXL(unet)
    config.set_inference_dtype(dtype, None)
    config.custom_operations = comfy.ops.disable_weight_init  # no random init: we fill below, faster
    if device == "meta":  # structure only: for benchmarks that never run the UNet
        model = comfy.model_base.SDXL(config, device="meta")
        return comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"),
                                                offload_device=torch.device("cpu"))
    model = comfy.model_base.SDXL(config, device="cpu")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in model.diffusion_model.state_dict().items():
            if name.endswith("bias"):
                tensor.zero_()
            elif tensor.ndim == 1:
                tensor.fill_(1.0)
            else:
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.02)
    model.diffusion_model.to(dtype)
    load = torch.device(device)
    return comfy.model_patcher.ModelPatcher(model, load_device=load, offload_device=mm.unet_offload_device())


def count_parameters(patcher):
    return sum(p.numel() for p in patcher.model.diffusion_model.parameters())


def pulid_fixture(version="v1", seed=0):
    """A real-size random PuLID checkpoint (written once under bench/_generated) and embeds from random features."""
    from testkit import make_pulid
    from pulid.checkpoint import load_pulid_model
    from pulid.embedding import encode_identity

    os.makedirs(GENERATED, exist_ok=True)
    path = os.path.join(GENERATED, f"pulid_{version}.safetensors")
    if not os.path.exists(path):
        make_pulid.write_pulid_checkpoint(path, version=version, dtype=torch.float16, seed=seed, fmt="safetensors")
    model = load_pulid_model(path)
    generator = torch.Generator().manual_seed(seed)
    id_cond = torch.randn(1, 1280, generator=generator)
    hidden = [torch.randn(1, 577, 1024, generator=generator) for _ in range(5)]
    return model, encode_identity(model, [id_cond], [hidden])


def sdxl_conditioning(batch=1, seed=0):
    generator = torch.Generator().manual_seed(seed + 7)

    def cond():
        return [[torch.randn(batch, 77, 2048, generator=generator),
                 {"pooled_output": torch.randn(batch, 1280, generator=generator)}]]

    return cond(), cond()


def sample(patcher, size, steps=2, cfg=5.0, seed=0):
    """Euler sampling through comfy.sample.sample, the path KSampler takes."""
    import comfy.sample

    latent = torch.zeros(1, 4, size // 8, size // 8)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(seed))
    positive, negative = sdxl_conditioning()
    return comfy.sample.sample(patcher, noise, steps, cfg, "euler", "normal", positive, negative, latent,
                               disable_pbar=True, seed=seed)


def sync(device):
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def interleaved(variants, reps, device="cpu"):
    """{name: [seconds per rep]} running each variant once per round, in alternating order."""
    times = {name: [] for name in variants}
    names = list(variants)
    for rep in range(reps):
        for name in (names if rep % 2 == 0 else names[::-1]):
            gc.collect()
            sync(device)
            start = time.perf_counter()
            variants[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def median(values):
    return statistics.median(values)


def report(title, rows, header=("variant", "median", "ratio")):
    """Print a small aligned table; rows are tuples of already formatted strings."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    log.info("\n%s", title)
    for row in (header, *rows):
        log.info("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
