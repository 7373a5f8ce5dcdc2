"""`python -m pulid generate` end to end through the ComfyUI in COMFYUI_PATH, on generated model files.

Each run is its own process, as a user runs it: ComfyUI's module-level state (folder paths, loaded
models) never leaks into other host tests. The runner script only adds what a test needs: the
small SDXL text encoders of make_sdxl (and writing that checkpoint, which needs ComfyUI imported).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import make_face_models
import make_pulid

COMFYUI = os.environ.get("COMFYUI_PATH")
ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
pytestmark = [pytest.mark.host, pytest.mark.skipif(not COMFYUI, reason="COMFYUI_PATH is not set")]

RUNNER = r"""
import os, sys
comfyui, tests, ckpt = sys.argv[1:4]
sys.path[:0] = [tests, os.getcwd()]
from pulid import cli
cli.load_headless().import_comfyui(comfyui)
import make_sdxl
make_sdxl.use_small_text_encoders()
if not os.path.exists(ckpt):
    make_sdxl.write_sdxl_checkpoint(ckpt + ".tmp")
    os.replace(ckpt + ".tmp", ckpt)
sys.exit(cli.main(sys.argv[4:]))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("generate")
    models = root / "models"
    for sub in ("pulid", "clip_vision", "checkpoints", "facexlib"):
        (models / sub).mkdir(parents=True)
    make_pulid.write_pulid_checkpoint(models / "pulid" / "pulid_v1.1.safetensors", "v1.1",
                                      dtype=torch.float16)
    # PuLID's encoder reads EVA's 1024-wide hidden states: full width, the fewest blocks it accepts.
    make_face_models.write_eva_clip_checkpoint(str(models / "clip_vision" / "EVA02_CLIP_L_336_psz14_s6B.pt"),
                                               embed_dim=1024, depth=20)
    make_face_models.write_antelopev2(str(models / "insightface" / "models" / "antelopev2"))
    make_face_models.write_facexlib(str(models / "facexlib"))
    face = np.full((640, 640, 3), 30, np.uint8)
    make_face_models.draw_face(face, (336, 304), 128)
    Image.fromarray(face).save(root / "me.png")
    return root, models


def _run(setup, out, *extra, models=None):
    root, default_models = setup
    models = models or default_models
    argv = ["generate", "--comfyui", COMFYUI, "--models-dir", str(models), "--face", str(root / "me.png"),
            "--prompt", "portrait photo", "--checkpoint", "sdxl_small.safetensors", "--steps", "2",
            "--cfg", "2.0", "--seed", "7", "--width", "64", "--height", "64", "--out", str(out), *extra]
    ckpt = str(default_models / "checkpoints" / "sdxl_small.safetensors")
    return subprocess.run([sys.executable, "-c", RUNNER, COMFYUI, str(TESTS), ckpt, *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)


def test_generate_writes_the_image_and_pulid_changes_it(setup, tmp_path):
    with_id, without_id = tmp_path / "with.png", tmp_path / "without.png"
    done = _run(setup, with_id, "--weight", "1.0")
    assert done.returncode == 0, done.stderr[-4000:]
    done = _run(setup, without_id, "--weight", "0.0")
    assert done.returncode == 0, done.stderr[-4000:]
    a, b = (np.asarray(Image.open(p).convert("RGB"), np.int16) for p in (with_id, without_id))
    assert a.shape == b.shape == (64, 64, 3)
    assert a.std() > 0  # a decoded image, not a constant fill
    assert np.abs(a - b).max() > 0, "the PuLID weight did not change the image"


def test_missing_model_fails_with_the_doctors_fix(setup, tmp_path):
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    done = _run(setup, tmp_path / "x.png", models=models)
    assert done.returncode == 1
    assert "MISSING   pulid_v1.1.safetensors" in done.stderr
    assert "--only pulid_v1.1" in done.stderr and "--only eva_clip" in done.stderr
    assert not (tmp_path / "x.png").exists()
