"""What the sweep process holds while ComfyUI renders: the face models 2323e57 kept loaded, against the detector
alone that checks the face photos now.

    .venv/bin/python -m bench.sweep_memory

While a sweep renders, its own process only sends prompts and writes images; what sets its memory is what it loaded
before. 2323e57 loaded the whole face encoder (insightface, facexlib, the EVA-CLIP vision tower) to check the face
photos and kept it through every render; now the face photos are checked with the detector alone, and the scoring
models load once rendering is over (after the sweep's own ComfyUI, if it started one, has stopped). Each variant
runs in a fresh process (the peak of a process only grows), on bench.tradeoff's real-size random files, and reports
its peak resident memory (the sweep's own measure: VmHWM) after checking one face photo.
"""
import json
import subprocess
import sys

from bench.common import ROOT, base_parser, log, machine, report
from bench.tradeoff import model_files

CHILD = r"""
import json, sys
from pulid_cli.sweep.command import peak_rss_mb
files = json.loads(sys.argv[2])
from bench.tradeoff import scene
image = scene(0)
if sys.argv[1] == "encoder":
    from pulid.face import FaceEncoder
    found = FaceEncoder(files["eva"], files["antelopev2"], files["facexlib"], providers="CPU").detect(image)
else:
    from pulid.detector import FaceDetector
    found = FaceDetector(files["antelopev2"], providers="CPU").detect(image)
assert found, "no face found in the test photo"
print(peak_rss_mb())
"""


def peak_mb(variant, files):
    done = subprocess.run([sys.executable, "-c", CHILD, variant, json.dumps(files)], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main():
    base_parser(__doc__.splitlines()[0], needs_comfy=False, timed=False).parse_args()
    files = model_files()
    log.info("machine: %s", machine())
    old, new = peak_mb("encoder", files), peak_mb("detector", files)
    report("peak resident memory of the sweep process while rendering (MB)",
           [("2323e57: face encoder loaded", f"{old:.0f}", "1.00"),
            ("now: detector only", f"{new:.0f}", f"{new / old:.2f}")], header=("variant", "peak MB", "ratio"))


if __name__ == "__main__":
    main()
