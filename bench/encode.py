"""Face encoding cost: one 1024-px photo through the whole pipeline, cold and warm, and N photos.

    .venv/bin/python -m bench.encode [--device cuda --dtype fp16] [--photos 4]

Real-size networks with random weights (written once under bench/_generated): SCRFD-10G-like
detection and IResNet100-like recognition ONNX, facexlib RetinaFace-R50 and BiSeNet, EVA02-L-336
through timm, the PuLID v1.1 IDFormer. Random detection weights find no face, so insightface
misses and the official fallback runs (facexlib aligns, ArcFace embeds the crop): every network
still runs once per photo.

Baseline: the networks alone (each one's own forward, timed inside the warm calls). A warm call
should cost little more than that: no model construction, no file reads, no repeated detection.
"""
import os
import time
from collections import defaultdict

import cv2
import numpy as np
import torch

from bench.common import DTYPES, GENERATED, base_parser, log, machine, median, pulid_fixture, report


def model_files():
    from testkit import make_face_models as mfm

    root = os.path.join(GENERATED, "face")
    files = {"eva": os.path.join(root, "EVA02_CLIP_L_336_psz14_s6B.pt"),
             "antelopev2": os.path.join(root, "antelopev2"), "facexlib": os.path.join(root, "facexlib")}
    if not os.path.exists(files["eva"]):
        mfm.write_eva_clip_checkpoint(files["eva"], "eva-clip", real_size=True)
    if not os.path.exists(os.path.join(files["antelopev2"], "glintr100.onnx")):
        mfm.write_antelopev2(files["antelopev2"], real_size=True)
    if not os.path.exists(os.path.join(files["facexlib"], "parsing_bisenet.pth")):
        mfm.write_facexlib(files["facexlib"])
    return files


def photo(index):
    """A real photo shipped with insightface, resized so its long side is 1024 px; mirrored per index."""
    import insightface

    path = os.path.join(os.path.dirname(insightface.__file__), "data", "images", "t1.jpg")
    image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    scale = 1024 / max(image.shape[:2])
    image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                       interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(image[:, ::-1]) if index % 2 else image


class StageClock:
    """Seconds spent inside each network, recorded through hooks and wrappers (bench-only)."""

    def __init__(self, device):
        self.device = device
        self.seconds = defaultdict(float)

    def _sync(self):
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()

    def module(self, name, module):
        starts = {}

        def before(*_):
            self._sync()
            starts[name] = time.perf_counter()

        def after(*_):
            self._sync()
            self.seconds[name] += time.perf_counter() - starts[name]

        module.register_forward_pre_hook(before)
        module.register_forward_hook(after)

    def method(self, name, owner, attribute):
        """Time calls of owner.attribute (ONNX sessions and insightface models are not torch modules)."""
        call = getattr(owner, attribute)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        setattr(owner, attribute, timed)

    def take(self):
        out, self.seconds = dict(self.seconds), defaultdict(float)
        return out


def main():
    parser = base_parser(__doc__, needs_comfy=False)
    parser.add_argument("--photos", type=int, default=4, help="photos in the multi-image run")
    args = parser.parse_args()
    from pulid.embedding import encode_identity
    from pulid.face import FaceEncoder

    dtype = DTYPES[args.dtype]
    files = model_files()
    pulid, _ = pulid_fixture("v1.1")
    pulid.encoder.to(args.device)
    images = [photo(i) for i in range(max(args.photos, 1))]
    log.info("%s; device %s, EVA dtype %s", machine(), args.device, args.dtype)

    start = time.perf_counter()
    encoder = FaceEncoder(files["eva"], files["antelopev2"], files["facexlib"], providers="auto",
                          device=args.device, dtype=dtype)
    construct = time.perf_counter() - start

    clock = StageClock(args.device)
    # insightface 2.x opens one detector session per input size, so time the whole detect call.
    clock.method("insightface detection", encoder.detector, "detect_bgr")
    clock.method("ArcFace recognition", encoder.recognizer.session, "run")
    clock.module("facexlib RetinaFace", encoder.retinaface)
    clock.module("facexlib BiSeNet", encoder.parser)
    clock.module("EVA02-CLIP-L", encoder.eva)
    clock.module("PuLID IDFormer", pulid.encoder)

    def one(image, index=0):
        features = encoder.encode(image, image_index=index)
        return encode_identity(pulid, [features.id_cond], [features.vit_hidden])

    start = time.perf_counter()
    one(images[0])
    first = time.perf_counter() - start
    clock.take()

    warm, stages = [], defaultdict(list)
    for _ in range(args.reps):
        start = time.perf_counter()
        one(images[0])
        warm.append(time.perf_counter() - start)
        for name, seconds in clock.take().items():
            stages[name].append(seconds)
    networks = sum(median(v) for v in stages.values())

    start = time.perf_counter()
    features = [encoder.encode(image, image_index=i) for i, image in enumerate(images[:args.photos])]
    encode_identity(pulid, [f.id_cond for f in features], [f.vit_hidden for f in features])
    several = time.perf_counter() - start

    rows = [("construct FaceEncoder (load all models)", f"{construct:.2f} s", ""),
            ("first call (1 photo)", f"{first:.2f} s", ""),
            ("networks alone (baseline)", f"{networks:.2f} s", "1.00x"),
            ("warm call (1 photo)", f"{median(warm):.2f} s", f"{median(warm) / networks:.2f}x"),
            (f"{args.photos} photos, one identity", f"{several:.2f} s",
             f"{several / args.photos / networks:.2f}x per photo")]
    report(f"encode ({args.reps} warm reps, medians)", rows, header=("what", "time", "vs networks"))
    report("where a warm call's time goes", [(name, f"{median(v):.3f} s", f"{median(v) / median(warm):.0%}")
                                             for name, v in sorted(stages.items(), key=lambda kv: -median(kv[1]))],
           header=("network", "median", "share of call"))


if __name__ == "__main__":
    main()
