"""Re-apply cost: from a changed weight/method/start/end to a patched model ready, face already encoded.

    COMFYUI_PATH=/path/to/ComfyUI .venv/bin/python -m bench.reapply

ComfyUI caches the Encode Face output, so when an artist moves a slider only Apply PuLID runs again.
Baseline: ModelPatcher.clone() alone, the floor for any node that returns a patched MODEL.
Also reported: the ID K/V the first sampling step needs, projected for new embeddings and shared after
any widget change (weight, method, start/end, mask: the zero tokens are a count, not part of the
projection). Target: <= 10 ms from changed widget to patched model.
"""
import itertools
import time

from bench.common import base_parser, build_sdxl, interleaved, log, machine, median, pulid_fixture, report, start_comfy


def main():
    parser = base_parser(__doc__)
    parser.set_defaults(reps=50)
    args = parser.parse_args()
    pack_nodes = start_comfy(args.comfyui, "cpu")

    base = build_sdxl("meta", None)  # patching never touches UNet weights
    pulid, embeds = pulid_fixture("v1.1")
    handle = pack_nodes.runtime.PulidModelHandle(model=pulid, patcher=None)
    apply_node, advanced_node = pack_nodes.PuLIDSDXLApply(), pack_nodes.PuLIDSDXLApplyAdvanced()
    settings = itertools.cycle([(0.8, "fidelity", 0.0, 1.0), (1.2, "style", 0.1, 0.9), (0.5, "neutral", 0.0, 0.8)])

    def reapply():
        weight, method, start, end = next(settings)
        apply_node.apply(base, handle, embeds, weight, method, start, end)

    def reapply_advanced():
        weight, _, start, end = next(settings)
        advanced_node.apply(base, handle, embeds, weight, start, end, 20, "v2")

    runs = {"clone (baseline)": base.clone, "Apply PuLID": reapply, "Apply PuLID (Advanced)": reapply_advanced}
    for fn in runs.values():  # warm-up
        fn()
    times = interleaved(runs, args.reps)
    floor = median(times["clone (baseline)"])
    rows = [(name, f"{median(t) * 1e3:.2f} ms", f"{median(t) / floor:.1f}x") for name, t in times.items()]
    log.info("%s", machine())
    report(f"re-apply ({args.reps} interleaved reps, medians)", rows)

    import torch

    def first_step_kv(weight, method, embeds):
        """Seconds to get every site's ID K/V, as the first sampling step after an apply does."""
        patched = apply_node.apply(base, handle, embeds, weight, method, 0.0, 1.0)[0]
        patches = patched.model_options["transformer_options"]["patches_replace"]["attn2"].values()
        begin = time.perf_counter()
        for patch in patches:
            patch.kv.layout((1, 0), torch.device("cpu"), torch.float32)
        return time.perf_counter() - begin, patched

    from pulid.embedding import IDEmbedding

    fresh = IDEmbedding(embeds.cond.clone(), embeds.uncond.clone(), embeds.version, dict(embeds.metadata))
    cold, keep = first_step_kv(0.8, "fidelity", fresh)  # embeddings no apply used yet: projects all 70 sites
    method, _ = first_step_kv(0.8, "style", fresh)  # other num_zero and ortho: shared projections
    slider, _ = first_step_kv(1.1, "style", fresh)
    report("first sampling step's ID K/V (70 sites, CPU fp32)",
           [("after a new face / first apply", f"{cold * 1e3:.1f} ms"),
            ("after a method change", f"{method * 1e3:.2f} ms"),
            ("after a weight/start/end/mask change", f"{slider * 1e3:.2f} ms")], header=("when", "time"))
    del keep


if __name__ == "__main__":
    main()
