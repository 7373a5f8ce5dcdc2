"""Per-step cost of PuLID: a real-size SDXL UNet sampled unpatched and patched, in one process.

    COMFYUI_PATH=/path/to/ComfyUI .venv/bin/python -m bench.step_overhead             # CPU, 256 px
    COMFYUI_PATH=... python -m bench.step_overhead --device cuda --size 1024 --dtype fp16

Variants: base, PuLID v1 with the fidelity preset (num_zero 8, ortho v2), PuLID v1.1 with the
official demo defaults (weight 0.8, num_zero 20, ortho v2). Euler, cfg 5, 2 steps, same noise and
conditioning. Targets: the identity term's own time <= 0.8 % of a base UNet step on CPU at 256 px;
<= 1.01x base per step on a GPU at 1024 px fp16. `python -m bench.site_profile` shows where one site's time goes.
"""
import time

from bench.common import (DTYPES, base_parser, build_sdxl, count_parameters, interleaved, log, machine, median,
                    pulid_fixture, report, sample, start_comfy, sync)

CFG = 5.0


def main():
    parser = base_parser(__doc__)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (latent = size/8)")
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    nodes = start_comfy(args.comfyui, args.device)
    from pulid.attention import DEFAULT_WEIGHT, resolve_preset

    dtype = DTYPES[args.dtype]
    base = build_sdxl(args.device, dtype)
    log.info("SDXL UNet: %.2f B parameters, %s, %s, %d px, %d steps; %s", count_parameters(base) / 1e9,
             args.device, args.dtype, args.size, args.steps, machine())
    variants = {"base": base}
    for version, method in (("v1", "fidelity"), ("v1.1", "fidelity")):
        pulid, embeds = pulid_fixture(version)
        num_zero, ortho = resolve_preset(version, method)
        variants[f"PuLID {version} {method}"] = nodes.patch.patch_model(
            base, pulid, embeds, weight=DEFAULT_WEIGHT[version], num_zero=num_zero, ortho=ortho,
            start_at=0.0, end_at=1.0)

    timers = {name: UNetTimer(args.device) for name in variants}
    for name, model in list(variants.items()):
        variants[name] = model.clone()
        variants[name].set_model_unet_function_wrapper(timers[name])
    for model in variants.values():  # warm-up: UNet on the device; each patch projects its ID K/V once
        sample(model, args.size, steps=1)
    for timer in timers.values():
        timer.calls.clear()
    runs = {name: (lambda m=m: sample(m, args.size, steps=args.steps)) for name, m in variants.items()}
    id_term = IdentityTermTimer(args.device)
    walls = interleaved(runs, args.reps, args.device)
    per_step = {name: median(timer.calls) for name, timer in timers.items()}
    rows = [(name, f"{per_step[name]:.3f} s/step", f"{per_step[name] / per_step['base']:.4f}x",
             f"{median(walls[name]):.2f} s") for name in runs]
    report(f"UNet time per step ({args.reps} interleaved reps x {args.steps} steps, medians; cfg {CFG}: "
           f"cond+uncond in one batch)", rows, header=("variant", "median", "ratio", "whole sample() call"))
    # Step times on a shared CPU vary by a few percent run to run; the identity term's own time is a
    # steadier estimate of the overhead (the rest of a patched step is the unpatched computation).
    rows = [(name, f"{seconds * 1e3:.1f} ms/step", f"{100 * seconds / per_step['base']:.2f} %",
             f"{1 + seconds / per_step['base']:.4f}x")
            for name, seconds in id_term.per_step(args.reps * args.steps).items()]
    report("identity term alone (70 sites, summed per step)", rows,
           header=("variant", "time", "share of a base step", "1 + time/base step"))


class IdentityTermTimer:
    """Times every site's identity term (IdentityAttention.identity_term: K/V layout, the ID attention,
    ortho, mask), attributed to the variant running by its weight, ortho and zero tokens."""

    def __init__(self, device):
        from testkit.pack import pack_module

        IdentityAttention = pack_module("nodes.attn2").IdentityAttention

        self.device, self.seconds, inner = device, {}, IdentityAttention.identity_term

        def timed(site, q, out, extra_options, **kwargs):
            sync(self.device)
            start = time.perf_counter()
            result = inner(site, q, out, extra_options, **kwargs)
            sync(self.device)
            name = f"weight {site.weight:g}, ortho {site.ortho}, {site.kv.num_zero} zero tokens"
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
            return result

        IdentityAttention.identity_term = timed

    def per_step(self, steps):
        return {name: total / steps for name, total in self.seconds.items()}


class UNetTimer:
    """unet_function_wrapper that times each UNet evaluation (one per step), excluding sampler set-up
    and ComfyUI's model loading, which are the same for every variant and only add noise."""

    def __init__(self, device):
        self.device = device
        self.calls = []

    def __call__(self, apply_model, args):
        sync(self.device)
        start = time.perf_counter()
        out = apply_model(args["input"], args["timestep"], **args["c"])
        sync(self.device)
        self.calls.append(time.perf_counter() - start)
        return out


if __name__ == "__main__":
    main()
