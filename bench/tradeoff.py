"""Cost of scoring the trade-off: prompt adherence (CLIP-T) and preservation beside Face Similarity.

    .venv/bin/python -m bench.tradeoff [--device cuda --dtype fp16] [--batch 8] [--comfyui PATH]
    .venv/bin/python -m bench.tradeoff --case towers [--small]   # question 0 alone (--small: small files)

Real-size networks with random weights (written once under bench/_generated/tradeoff): EVA02-CLIP-L-336
with its 12-layer, width-768 text tower (one file, as EVA02_CLIP_L_336_psz14_s6B.pt), an IResNet100-like
ArcFace (ONNX). The detector is the small blob detector that finds the drawn test faces (a random
real-size SCRFD finds none, and then no ArcFace would run): detection is cheaper here than with the real
SCRFD-10G, so Face Similarity is a little under-priced and the ratios below are upper bounds.

Four questions, each against a baseline run in the same process:
0. Both towers for scoring: two reads of the file (load_eva_clip + load_clip_text, as before) against one
   (load_clip): seconds, peak resident memory (VmHWM, reset before each load) and peak Python heap
   (tracemalloc) of each.
1. Loading the text tower: seconds and resident memory (VmRSS) it adds.
2. One 1024² image scored with all three measures vs Face Similarity alone, cold (first call) and warm.
3. The two CLIP measures on a batch (default 8) at 1024² vs one SDXL sampling step at 1024² (real-size
   UNet, random weights, euler, CFG: both halves) on the same device; needs ComfyUI (--comfyui).
"""
import gc
import os
import resource
import time
import tracemalloc

import numpy as np
import torch

from bench.common import (DTYPES, GENERATED, base_parser, build_sdxl, interleaved, log, machine, median, report,
                          sample, start_comfy, sync)

PROMPT = "portrait photo of a woman in a red coat, (city street at night:1.2), bokeh, 35mm"


def eva_file(small=False):
    """The EVA-CLIP file with both towers (real size, or the tests' small one), written once."""
    from testkit import make_face_models as mfm

    path = os.path.join(GENERATED, "tradeoff_small" if small else "tradeoff", "EVA02_CLIP_L_336_psz14_s6B.pt")
    if not os.path.exists(path):
        part = path + ".part"
        mfm.write_eva_clip_checkpoint(part, "eva-clip", real_size=not small)
        os.replace(part, path)
    return path


def model_files():
    from testkit import make_face_models as mfm

    root = os.path.join(GENERATED, "tradeoff")
    files = {"eva": eva_file(), "antelopev2": os.path.join(root, "antelopev2"),
             "facexlib": os.path.join(root, "facexlib")}
    if not os.path.exists(os.path.join(files["antelopev2"], "glintr100.onnx")):
        mfm.write_antelopev2(files["antelopev2"], real_size=True, blob_detector=True)
    if not os.path.exists(os.path.join(files["facexlib"], "parsing_bisenet.pth")):
        mfm.write_facexlib(files["facexlib"])
    return files


def rss_mb():
    """Resident memory now (VmRSS; psutil is not a dependency), or the peak where /proc is missing."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peaks_mb(action):
    """(peak resident memory `action` adds above what the process held before, peak Python heap during it), MB.

    Resident: the kernel's high-water mark (VmHWM), reset first by writing 5 to /proc/self/clear_refs (Linux
    4.0+), so each variant gets its own peak in one process; None where that is not possible. It misses memory
    freed earlier and reused (the allocator keeps it) and pages of a memory-mapped checkpoint not yet touched.
    Python heap (tracemalloc): the unpickler's and the state dict's objects, not the tensors' storage.
    """
    gc.collect()
    before = rss_mb()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        before = None
    tracemalloc.start()
    try:
        action()
        heap = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    if before is None:
        return None, heap
    with open("/proc/self/status", encoding="ascii") as status:
        peak = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:"))
    return peak - before, heap


def both_towers(path, device, dtype, reps):
    """Question 0: vision + text towers from two reads of the file (the loaders one after the other) and from
    one (load_clip); the towers are dropped after each load."""
    import open_clip  # noqa: F401  (imported before timing: an import is not a read)
    import timm  # noqa: F401
    from pulid.clip_text import load_clip_text
    from pulid.eva_clip import load_eva_clip
    from pulid.tradeoff import load_clip

    variants = {"two reads: load_eva_clip + load_clip_text (baseline)":
                lambda: (load_eva_clip(path, device, dtype), load_clip_text(path, device, dtype)),
                "one read: load_clip": lambda: load_clip(path, device, dtype)}
    for load in variants.values():  # warm-up: first-call costs (timm's model registry, the page cache)
        load()
    peaks = {name: peaks_mb(load) for name, load in variants.items()}
    times = interleaved(variants, reps, device)
    base = next(iter(variants))
    mb = lambda value: "n/a" if value is None else f"{value:.1f} MB"  # noqa: E731
    ratio = lambda a, b: "" if a is None or not b else f"{a / b:.2f}x"  # noqa: E731
    rows = [(name, f"{median(times[name]):.3f} s", ratio(median(times[name]), median(times[base])),
             mb(peaks[name][0]), ratio(peaks[name][0], peaks[base][0]), mb(peaks[name][1]),
             ratio(peaks[name][1], peaks[base][1])) for name in variants]
    report(f"0. both towers from {os.path.basename(path)} ({os.path.getsize(path) / 2**20:.0f} MB; {reps} interleaved "
           f"reps, medians; peaks of one load each, after a warm-up load)", rows,
           header=("variant", "median", "ratio", "peak RSS added", "ratio", "peak Python heap", "ratio"))


def scene(seed, size=1024):
    """A smooth 'photo' with one drawn face the blob detector finds (the detector sees it at 640 px)."""
    from testkit.make_face_models import draw_face

    rng = np.random.default_rng(seed)
    coarse = rng.uniform(20, 120, (8, 8, 3)).astype(np.float32)
    import cv2

    image = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)
    centre = int(round((32 * 10 + 16) * size / 640))
    return draw_face(image, (centre, centre), size // 4)


def main():
    parser = base_parser(__doc__, needs_comfy=True)
    parser.add_argument("--batch", type=int, default=8, help="images in the batch question")
    parser.add_argument("--size", type=int, default=1024, help="image side in pixels")
    parser.add_argument("--case", choices=("all", "towers"), default="all",
                        help="towers: question 0 alone (no ArcFace, facexlib or ComfyUI needed)")
    parser.add_argument("--small", action="store_true",
                        help="with --case towers: the tests' small EVA-CLIP file (a quick check, not the real cost)")
    args = parser.parse_args()
    dtype = DTYPES[args.dtype]
    if args.small and args.case != "towers":
        parser.error("--small goes with --case towers: the other questions measure the real-size networks")
    if args.case == "towers":
        log.info("%s; device %s, dtype %s", machine(), args.device, args.dtype)
        both_towers(eva_file(args.small), args.device, dtype, args.reps)
        return
    if args.comfyui:
        start_comfy(args.comfyui, args.device)  # first, so every measurement runs with ComfyUI imported
    files = model_files()
    from pulid.face import FaceEncoder
    from pulid.similarity import face_similarity

    # ---------------------------------------------------------------- 1. loading the text tower
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    import open_clip  # noqa: F401  (first import: part of a cold load)

    imported = time.perf_counter() - start
    from pulid.clip_text import load_clip_text

    start = time.perf_counter()
    text = load_clip_text(files["eva"], device=args.device, dtype=dtype)
    cold_load = time.perf_counter() - start
    loaded = rss_mb()
    start = time.perf_counter()
    text.encode([PROMPT])
    sync(args.device)
    first_encode = time.perf_counter() - start
    after_encode = rss_mb()
    start = time.perf_counter()
    again = load_clip_text(files["eva"], device=args.device, dtype=dtype)
    warm_load = time.perf_counter() - start
    del again
    gc.collect()
    params = sum(p.numel() for p in text.parameters())
    encodes = interleaved({"encode": lambda: text.encode([PROMPT])}, args.reps, args.device)["encode"]

    encoder = FaceEncoder(files["eva"], files["antelopev2"], files["facexlib"], providers="auto",
                          device=args.device, dtype=dtype)
    both_towers(files["eva"], args.device, dtype, args.reps)
    from pulid.tradeoff import Clip, image_embeddings, preservation, prompt_adherence

    clip = Clip(encoder.eva, text)
    provider = encoder.recognizer.session.get_providers()[0]
    log.info("%s; device %s, dtype %s, onnxruntime %s", machine(), args.device, args.dtype, provider)
    report("1. text tower (%s parameters, %d layers, width %d)" % (f"{params / 1e6:.0f}M", text.config.layers,
                                                                   text.config.width),
           [("import open_clip (first time)", f"{imported:.2f} s", ""),
            ("load_clip_text, cold (first in process)", f"{cold_load:.2f} s", ""),
            ("load_clip_text, again", f"{warm_load:.2f} s", ""),
            ("first encode (1 prompt)", f"{first_encode:.3f} s", ""),
            ("warm encode (1 prompt)", f"{median(encodes):.3f} s", ""),
            ("resident memory added by the load", f"{loaded - before:.0f} MB", ""),
            ("... and after the first encode", f"{after_encode - before:.0f} MB",
             f"weights {params * torch.finfo(dtype).bits / 8 / 2**20:.0f} MB")],
           header=("what", "value", "note"))

    # ---------------------------------------------------------------- 2. one image, three measures
    reference, image, baseline = scene(0, args.size), scene(1, args.size), scene(2, args.size)
    mean, results = face_similarity(encoder, [reference], [image])
    if mean is None:
        raise SystemExit("the detector found no face in the bench image; the scene is wrong")

    def face_alone():
        face_similarity(encoder, [reference], [image])

    def clip_measures(images, baselines):
        embeddings = image_embeddings(clip.vision, images)
        prompt_adherence(clip, None, PROMPT, embeddings=embeddings)
        preservation(clip, None, baselines, embeddings=embeddings)

    def all_three():
        face_alone()
        clip_measures([image], [baseline])

    start = time.perf_counter()
    clip_measures([image], [baseline])  # the vision tower's first call (face similarity already ran once)
    sync(args.device)
    cold_clip = time.perf_counter() - start
    start = time.perf_counter()
    face_alone()
    warm_face_first = time.perf_counter() - start
    times = interleaved({"face": face_alone, "all": all_three}, args.reps, args.device)
    face, both = median(times["face"]), median(times["all"])
    report(f"2. one {args.size}² image ({args.reps} interleaved warm reps, medians; Face Similarity includes "
           f"its reference photo)",
           [("Face Similarity alone (baseline)", f"{face:.2f} s", "1.00x"),
            ("Face Similarity + prompt adherence + preservation", f"{both:.2f} s", f"{both / face:.2f}x"),
            ("CLIP measures, first call (cold towers)", f"{cold_clip:.2f} s", f"{cold_clip / face:.2f}x"),
            ("Face Similarity, a call before the reps", f"{warm_face_first:.2f} s", "")])

    # ---------------------------------------------------------------- 3. a batch vs one SDXL step
    images = [scene(10 + i, args.size) for i in range(args.batch)]
    baselines = [scene(30 + i, args.size) for i in range(args.batch)]
    batch_times = interleaved({"clip": lambda: clip_measures(images, baselines)}, max(1, args.reps - 1),
                              args.device)["clip"]
    batch = median(batch_times)
    rows = [(f"CLIP measures, {args.batch} images + {args.batch} baselines", f"{batch:.2f} s", "")]
    if args.comfyui:
        del encoder, clip, text
        gc.collect()
        patcher = build_sdxl(args.device, dtype)
        sample(patcher, args.size, steps=1)  # warm-up: ComfyUI loads the model onto the device here
        steps = interleaved({"step": lambda: sample(patcher, args.size, steps=1)}, 1, args.device)["step"]
        step = median(steps)
        rows = [("one SDXL step (euler, CFG 5: two UNet passes) (baseline)", f"{step:.2f} s", "1.00x"),
                (rows[0][0], rows[0][1], f"{batch / step:.2f}x")]
    else:
        log.info("no ComfyUI (--comfyui / COMFYUI_PATH): the SDXL step is not measured")
    report(f"3. a batch at {args.size}² vs one SDXL sampling step at {args.size}²", rows)


if __name__ == "__main__":
    main()
