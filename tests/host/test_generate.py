"""`python -m pulid generate` (the first spelling, which starts `python -m pulid_cli generate`) end to end against
real ComfyUI servers of the host in COMFYUI_PATH.

Both modes, as a user runs them: a server the command starts itself (--comfyui), and one already
running (--server). Every run is its own process, on the generated model files of the `comfy` fixture;
the servers load a test-only custom node that shrinks the text encoders (tests/host/custom_nodes/).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from testkit.comfyui_server import pack_server

COMFYUI = os.environ.get("COMFYUI_PATH")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.host, pytest.mark.skipif(not COMFYUI, reason="COMFYUI_PATH is not set")]


@pytest.fixture(scope="module")
def setup(cli_setup):
    return cli_setup


def _generate(setup, out, *extra, tmp=None):
    models, face, _ = setup
    argv = ["--face", str(face), "--prompt", "portrait photo", "--steps", "2", "--cfg", "2.0", "--seed", "7",
            "--width", "64", "--height", "64", "--out", str(out), *extra]
    env = dict(os.environ, TMPDIR=str(tmp)) if tmp else None
    return subprocess.run([sys.executable, "-m", "pulid", "generate", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def server(setup, tmp_path_factory):
    """A ComfyUI started the way a user starts one, with this pack in its custom_nodes."""
    models, _, yaml = setup
    with pack_server(COMFYUI, models, tmp_path_factory.mktemp("server"), [yaml]) as process:
        yield process


def _pixels(path):
    return np.asarray(Image.open(path).convert("RGB"), np.int16)


def test_spawned_and_running_server_render_and_pulid_changes_the_image(setup, server, tmp_path):
    spawned, running = tmp_path / "spawned.png", tmp_path / "running.png"
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = _generate(setup, spawned, "--comfyui", COMFYUI, "--models-dir", str(setup[0]),
                     "--extra-model-paths", str(setup[2]), "--cpu", "--weight", "1.0", tmp=scratch)
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip() == str(spawned)
    assert "sampling" in done.stderr  # the websocket's progress bar
    # (other packages in the server may keep a file of their own in TMPDIR; ours is pulid-generate-*)
    assert not list(scratch.glob("pulid-generate-*")), "generate left its temporary folder behind"
    done = _generate(setup, running, "--server", server.url, "--weight", "0.0")
    assert done.returncode == 0, done.stderr[-4000:]
    a, b = _pixels(spawned), _pixels(running)
    assert a.shape == b.shape == (64, 64, 3)
    assert a.std() > 0  # a decoded image, not a constant fill
    assert np.abs(a - b).max() > 0, "the PuLID weight did not change the image"


def test_rejected_prompt_shows_comfyuis_node_error(setup, server, tmp_path):
    done = _generate(setup, tmp_path / "x.png", "--server", server.url, "--method", "strongest")
    assert done.returncode == 1
    assert "Node 7 (PuLIDSDXLApply): Value not in list" in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "x.png").exists()


def test_failed_node_shows_comfyuis_execution_error(setup, server, tmp_path):
    broken = setup[0] / "pulid" / "zz_broken_test.safetensors"
    broken.write_bytes(b"not a safetensors file")
    try:
        done = _generate(setup, tmp_path / "x.png", "--server", server.url, "--pulid-file", broken.name)
    finally:
        broken.unlink()
    assert done.returncode == 1
    assert "Node 2 (PuLIDSDXLModelLoader): " in done.stderr and broken.name in done.stderr, done.stderr[-3000:]
    assert not (tmp_path / "x.png").exists()


def test_missing_model_fails_with_the_doctors_fix(setup, tmp_path):
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    _, face, yaml = setup
    done = _generate((models, face, yaml), tmp_path / "x.png", "--comfyui", COMFYUI, "--models-dir", str(models))
    assert done.returncode == 1
    assert "MISSING   pulid_v1.1.safetensors" in done.stderr
    assert "--only pulid_v1.1" in done.stderr and "--only eva_clip" in done.stderr
    assert not (tmp_path / "x.png").exists()
