"""Memory cost of PuLID while sampling, after the run, and of ModelPatcher.clone() on a patched model.

    COMFYUI_PATH=/path/to/ComfyUI .venv/bin/python -m bench.memory            # CPU: resident memory (RSS)
    COMFYUI_PATH=... python -m bench.memory --device cuda --size 1024 --dtype fp16   # GPU: allocated memory

Same real-size random SDXL UNet, noise and conditioning for base and PuLID (v1.1, official demo
defaults). The PuLID model is loaded before the baseline: what is measured is what patching and
sampling add. Each PuLID run patches from a fresh copy of the embeddings, so its ID K/V projection
(kept while the embeddings and the patched model live) is counted every time. Target: <= 100 MB extra while sampling (only the cached ID K/V, not the 70
projection weights nor the encoders), back to the baseline after the run, and clone() copies no tensor.
"""
import ctypes
import gc
import threading
import time

import psutil
import torch

from bench.common import (DTYPES, base_parser, build_sdxl, interleaved, log, machine, median, pulid_fixture, report,
                    sample, start_comfy)

MB = 2 ** 20


class PeakMemory:
    """Peak of the measure (RSS, or CUDA allocated) while the block runs; RSS is polled every millisecond."""

    def __init__(self, device):
        self.cuda = str(device).startswith("cuda")
        self.process = psutil.Process()
        self.peak = 0

    def current(self):
        return torch.cuda.memory_allocated() if self.cuda else self.process.memory_info().rss

    def __enter__(self):
        gc.collect()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.start = self.current()
        self.peak = self.start
        self._stop = threading.Event()
        if not self.cuda:
            self._thread = threading.Thread(target=self._poll, daemon=True)
            self._thread.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.current())
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self.current())


def settle(device):
    """Collect garbage and, on glibc, hand freed heap back to the OS, so before/after compare live memory.

    glibc keeps freed blocks resident; without the trim, RSS after a run says more about the allocator
    than about what is still referenced.
    """
    gc.collect()
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def tensors_in(value, seen=None):
    """{id: tensor} of every tensor reachable from a model_options-like structure."""
    seen = set() if seen is None else seen
    found = {}
    if id(value) in seen:
        return found
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        found[id(value)] = value
    elif isinstance(value, dict):
        for item in value.values():
            found.update(tensors_in(item, seen))
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            found.update(tensors_in(item, seen))
    elif hasattr(value, "__dict__") and not isinstance(value, (torch.nn.Module, type)):
        for item in vars(value).values():
            found.update(tensors_in(item, seen))
    return found


def main():
    parser = base_parser(__doc__)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    nodes = start_comfy(args.comfyui, args.device)
    from pulid.attention import DEFAULT_WEIGHT, resolve_preset
    from pulid.embedding import IDEmbedding

    base = build_sdxl(args.device, DTYPES[args.dtype])
    pulid, embeds = pulid_fixture("v1.1")
    num_zero, ortho = resolve_preset("v1.1", "fidelity")

    def patched():
        """A patch from a fresh copy of the embeddings: its ID K/V are projected and counted anew."""
        fresh = IDEmbedding(embeds.cond.clone(), embeds.uncond.clone(), embeds.version, dict(embeds.metadata))
        return nodes.patch.patch_model(base, pulid, fresh, weight=DEFAULT_WEIGHT["v1.1"], num_zero=num_zero,
                                ortho=ortho, start_at=0.0, end_at=1.0)

    sample(base, args.size, steps=1)  # warm-up: UNet on the device, allocator caches filled
    sample(patched(), args.size, steps=1)
    gc.collect()
    measure = "CUDA allocated" if args.device.startswith("cuda") else "RSS"
    log.info("%s; %s, %s, %d px, %d steps; measure: %s", machine(), args.device, args.dtype, args.size,
             args.steps, measure)

    peaks = {"base": [], "PuLID v1.1": []}
    settle(args.device)
    before = PeakMemory(args.device).current()
    for _ in range(args.reps):
        with PeakMemory(args.device) as run:
            sample(base, args.size, steps=args.steps)
        peaks["base"].append(run.peak)
        model = patched()
        with PeakMemory(args.device) as run:
            sample(model, args.size, steps=args.steps)
        peaks["PuLID v1.1"].append(run.peak)
        del model  # with it go its embeddings copy and their projected K/V

    base_peak = median(peaks["base"])
    rows = [(name, f"{median(v) / MB:.0f} MB", f"{(median(v) - base_peak) / MB:+.1f} MB") for name, v in peaks.items()]
    report(f"peak {measure} while sampling ({args.reps} reps, medians)", rows, header=("variant", "peak", "extra"))
    settle(args.device)
    after = PeakMemory(args.device).current()
    log.info("after the runs (patched models and their embeddings released, gc + allocator trim): %+.1f MB "
             "against before them; PuLID K/V sets still alive: %d", (after - before) / MB,
             sum(1 for o in gc.get_objects() if isinstance(o, IDEmbedding) and o.cache_info().entries))

    model = patched()
    times = interleaved({"clone() of base": base.clone, "clone() of PuLID-patched": model.clone}, 20)
    report("ModelPatcher.clone() (20 reps, medians)",
           [(name, f"{median(t) * 1e3:.3f} ms") for name, t in times.items()], header=("what", "median"))
    original = tensors_in(model.model_options)
    copy = tensors_in(model.clone().model_options)
    pointers = {t.data_ptr() for t in original.values() if t.numel()}
    copied = [t for t in copy.values() if t.numel() and t.data_ptr() not in pointers]
    log.info("tensors in a patched model's options: %d; copied by clone(): %d", len(original), len(copied))


if __name__ == "__main__":
    main()
