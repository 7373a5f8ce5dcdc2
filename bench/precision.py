"""How faithfully a bf16 or fp16 UNet carries PuLID's identity, against the same UNet in float32.

    COMFYUI_PATH=/path/to/ComfyUI .venv/bin/python -m bench.precision            # CPU, 256 px, 2 steps, emulated
    COMFYUI_PATH=... python -m bench.precision --device cuda --size 1024 --steps 4  # the real dtypes on a GPU

A real-size SDXL UNet (random weights, the same ones in every precision) is sampled without PuLID and
with PuLID v1 at ortho off, v1 and v2 (weight 1 or --weight, 8 zero tokens, cfg 5, same noise). The identity's
effect is the patched latent minus the unpatched one in the same precision; the table gives its
cosine to the float32 effect (1 = same direction) and its length relative to it (1 = same size),
with the drift of the unpatched latent itself for scale. The ratio of interest is the cosine.

A CPU without bf16/fp16 instructions runs those matmuls ~90x slower than float32, so on the CPU the low
precisions are emulated (--emulate, the default there): the UNet's weights, every layer's input and every
module's output are rounded to the dtype while the arithmetic stays float32, as a GPU's bf16/fp16 matrix units
accumulate in float32. What it leaves out is the rounding inside a block between its residual additions.
"""
import argparse
import gc

import torch

from bench.common import DTYPES, base_parser, build_sdxl, count_parameters, log, machine, pulid_fixture, report, sample, \
    start_comfy

ORTHOS = ("off", "v1", "v2")


def main():
    parser = base_parser(__doc__, timed=False)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (latent = size/8)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--dtypes", default="bf16,fp16", help="precisions compared with fp32")
    parser.add_argument("--weight", type=float, default=1.0, help="PuLID weight (a smaller one, a smaller effect)")
    parser.add_argument("--emulate", action=argparse.BooleanOptionalAction, default=None,
                        help="round to the dtype but compute in float32 (default: on for the CPU)")
    args = parser.parse_args()
    emulated = args.device == "cpu" if args.emulate is None else args.emulate
    nodes = start_comfy(args.comfyui, args.device)
    pulid, embeds = pulid_fixture("v1")
    latents = {}
    for name in ["fp32", *args.dtypes.split(",")]:
        base = build_sdxl(args.device, torch.float32 if emulated else DTYPES[name])
        if name == "fp32":
            log.info("SDXL UNet: %.2f B parameters, %s, %d px, %d steps, %s; %s", count_parameters(base) / 1e9,
                     args.device, args.size, args.steps, "emulated low precision" if emulated else "real dtypes",
                     machine())
        elif emulated:
            emulate(base, DTYPES[name])
        latents[name, "none"] = sample(base, args.size, steps=args.steps).float()
        for ortho in ORTHOS:
            model = nodes.patch.patch_model(base, pulid, embeds, weight=args.weight, num_zero=8, ortho=ortho, start_at=0.0,
                                     end_at=1.0)
            latents[name, ortho] = sample(model, args.size, steps=args.steps).float()
        log.info("%s sampled", name)
        del base, model  # one UNet in memory at a time (fp32 is 10 GB)
        unload()
    rows = []
    for name in args.dtypes.split(","):
        drift = (latents[name, "none"] - latents["fp32", "none"]).norm() / latents["fp32", "none"].norm()
        for ortho in ORTHOS:
            reference = (latents["fp32", ortho] - latents["fp32", "none"]).flatten()
            effect = (latents[name, ortho] - latents[name, "none"]).flatten()
            cosine = torch.nn.functional.cosine_similarity(effect, reference, dim=0)
            rows.append((name, ortho, f"{cosine:.3f}", f"{effect.norm() / reference.norm():.3f}",
                         f"{reference.norm() / latents['fp32', 'none'].norm():.4f}", f"{drift:.4f}"))
    report(f"identity effect on the final latent vs float32 (weight {args.weight}, {args.size} px, {args.steps} steps, "
           "cfg 5)", rows,
           header=("dtype", "ortho", "cosine", "length ratio", "effect / latent (fp32)", "base drift"))


def emulate(patcher, dtype):
    """Round the UNet's weights to `dtype`, and from now on every layer's input and every module's output."""
    unet = patcher.model.diffusion_model

    def rounded(value):
        if torch.is_tensor(value) and value.is_floating_point():
            return value.to(dtype).to(value.dtype)
        return value

    with torch.no_grad():
        for parameter in unet.parameters():
            parameter.copy_(rounded(parameter))
    layers = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.GroupNorm, torch.nn.LayerNorm)
    for module in unet.modules():
        if isinstance(module, layers):
            module.register_forward_pre_hook(lambda _, args: tuple(rounded(a) for a in args))
        module.register_forward_hook(lambda _, __, out: rounded(out))


def unload():
    import comfy.model_management

    comfy.model_management.unload_all_models()
    gc.collect()


if __name__ == "__main__":
    main()
