"""Where one cross-attention site's identity term spends its time, per query shape and PuLID variant.

    .venv/bin/python -m bench.site_profile                     # CPU, 256 and 1024 px
    .venv/bin/python -m bench.site_profile --device cuda --dtype fp16

SDXL's 70 sites see two query shapes per image size: 10 sites of width 640 at 1/16 of the image side
(256 px: 256 tokens) and 60 of width 1280 at 1/32 (64 tokens); cond and uncond rows come batched (cfg).
For each shape and variant it times `IdentityAttention.identity_term` against the baseline, the site's
own text attention (77 tokens, the same SDPA call ComfyUI makes on CPU), in the same process, then
profiles the calls (torch.profiler, record_shapes) and prints the operators that take the time.
The per-step line sums the 70 sites. No ComfyUI needed: the patch runs on plain tensors.
"""
import time

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

from bench.common import DTYPES, base_parser, log, machine, median, report, sync

VARIANTS = {  # name: (ID tokens, num_zero, ortho), the presets of pulid.attention.PRESETS
    "v1 fidelity": (10, 8, "v2"),
    "v1 style": (10, 16, "v1"),
    "v1.1 fidelity": (32, 20, "v2"),
    "v1.1 style": (32, 40, "v1"),
    "v1.1 neutral": (32, 0, "off"),
}


def site_shapes(size):
    """(width, query tokens, sites per step) of SDXL's two attention levels for a size x size image."""
    return ((640, (size // 16) ** 2, 10), (1280, (size // 32) ** 2, 60))


class PulidWeights:
    """What the patch reads of a PuLID model: its K/V weights (a class: the embeddings refer to it weakly)."""

    def __init__(self, kv_weights):
        self.kv_weights = kv_weights


def make_site(width, tokens, num_zero, ortho, seed=0):
    """A site with fp16 projection weights on the CPU, as loaded; its K/V go to the query's device on first call."""
    from testkit.pack import pack_module

    attn2 = pack_module("nodes.attn2")
    embedding = pack_module("pulid.embedding")
    sites = pack_module("pulid.sites").SITES
    g = torch.Generator().manual_seed(seed)
    cond, uncond = (torch.randn(1, tokens, 2048, generator=g) for _ in range(2))
    k_weight, v_weight = (torch.randn(width, 2048, generator=g).half() * 0.02 for _ in range(2))
    index = next(i for i, site in enumerate(sites) if site.width == width)
    model = PulidWeights([(k_weight, v_weight)] * (index + 1))  # sites before `index` only fill the list
    kv = attn2.IDKeyValues(embedding.IDEmbedding(cond, uncond, "v1.1"), model, index, num_zero)
    return attn2.IdentityAttention(kv, 0.8, ortho, attn2.SigmaWindow(1e9, 0.0), attention=None)


def timed(fn, reps, device):
    times = []
    for _ in range(reps):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return median(times)


def main():
    parser = base_parser(__doc__, needs_comfy=False)
    parser.set_defaults(reps=50)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--top", type=int, default=4, help="operators listed per profile")
    args = parser.parse_args()
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    log.info("%s; %s %s, %d reps per median", machine(), args.device, args.dtype, args.reps)
    for size in args.sizes:
        per_step = dict.fromkeys(VARIANTS, 0.0)
        text_per_step = 0.0
        rows = []
        for width, tokens, count in site_shapes(size):
            g = torch.Generator().manual_seed(1)
            q, out = (torch.randn(2, tokens, width, generator=g).to(device, dtype) for _ in range(2))
            text_k, text_v = (torch.randn(2, 77, width, generator=g).to(device, dtype) for _ in range(2))
            heads = width // 64
            split = (lambda x: x.view(2, -1, heads, 64).transpose(1, 2))

            def text():
                return F.scaled_dot_product_attention(split(q), split(text_k), split(text_v))

            options = {"cond_or_uncond": [1, 0], "n_heads": heads}
            text()
            text_time = timed(text, args.reps, device)
            text_per_step += text_time * count
            for name, (id_tokens, num_zero, ortho) in VARIANTS.items():
                site = make_site(width, id_tokens, num_zero, ortho)
                call = (lambda: site.identity_term(q, out, options))
                call()  # projects the K/V once, as the first step does
                seconds = timed(call, args.reps, device)
                per_step[name] += seconds * count
                with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda"
                                                                  else []), record_shapes=True) as prof:
                    for _ in range(10):
                        call()
                    sync(device)
                rows.append((f"{width}x{tokens}", name, f"{id_tokens}+{num_zero} {ortho}",
                             f"{seconds * 1e3:.3f} ms", f"{seconds / text_time:.2f}x", top_ops(prof, args.top)))
        report(f"{size} px: one site call, identity term vs the site's text attention (medians)", rows,
               header=("site", "variant", "tokens", "time", "vs text", "where the time goes (self time)"))
        report(f"{size} px: per UNet step (10 + 60 sites)",
               [(name, f"{t * 1e3:.1f} ms", f"{t / text_per_step:.2f}x") for name, t in per_step.items()],
               header=("variant", "identity term", "vs text attention"))


def top_ops(prof, count):
    """'op share%' of the operators with the most self time (device time on CUDA), in one column."""
    events = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    attr = "self_device_time_total" if any(getattr(e, "self_device_time_total", 0) for e in events) else "self_cpu_time_total"
    total = sum(getattr(e, attr) for e in events) or 1
    events.sort(key=lambda e: getattr(e, attr), reverse=True)
    return ", ".join(f"{e.key.removeprefix('aten::')} {100 * getattr(e, attr) / total:.0f}%" for e in events[:count])


if __name__ == "__main__":
    main()
