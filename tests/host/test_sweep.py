"""`python -m pulid_cli sweep` against two real ComfyUI servers of the host in COMFYUI_PATH (loopback, the generated
test models, tiny images): every job rendered once, SIGINT then the same command renders only the rest, a server
killed after a render hands its jobs to the other, and bad input stops before anything renders.

The servers' own output folders are what we count: each render that reached SaveImage is one file there.
"""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pulid_cli.comfyui import free_port, get_json
from testkit.comfyui_server import pack_server

COMFYUI = os.environ.get("COMFYUI_PATH")
ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.host, pytest.mark.skipif(not COMFYUI, reason="COMFYUI_PATH is not set")]
# 1 face x 2 prompts x 2 weights x 1 method x 2 seeds + 2 x 2 baselines
JOBS = 1 * 2 * 2 * 1 * 2 + 2 * 2


@pytest.fixture(scope="module")
def servers(cli_setup, tmp_path_factory):
    """Two servers, started one after the other, each with its own output folder."""
    models, _, yaml = cli_setup
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    started = []
    try:
        for name in ("a", "b"):
            started.append(pack_server(COMFYUI, models, tmp_path_factory.mktemp(f"server_{name}"), [yaml], env=env))
            started[-1].start()
        yield started
    finally:
        for server in started:
            server.stop()


def _outputs(server):
    return sorted((Path(server.log_path).parent / "output").glob("*.png"))


def _idle(server, timeout=120):
    """Wait until the server has nothing queued or running (a server that is gone is idle)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            queue = get_json(server.url + "/queue", timeout=5)
        except OSError:
            return
        if not queue["queue_running"] and not queue["queue_pending"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{server.url} still busy after {timeout} s")


def _argv(cli_setup, out, urls, prompts, *extra):
    models, face, _ = cli_setup
    argv = [sys.executable, "-m", "pulid_cli", "sweep", "--face", str(face), "--prompts", str(prompts),
            "--weights", "0.8,1.0", "--methods", "fidelity", "--seeds", "3,4", "--steps", "2", "--cfg", "2.0",
            "--width", "64", "--height", "64", "--models-dir", str(models), "--out", str(out), *extra]
    for url in urls:
        argv += ["--server", url]
    return argv


def _env(tmp_path):
    return dict(os.environ, OMP_NUM_THREADS="1", XDG_CACHE_HOME=str(tmp_path / "cache"))


def _default_signals():
    """In the child: SIGINT and SIGTERM at their defaults, as in a terminal. A test run started in the background
    (`.ci/run &`) hands its children SIGINT ignored, and Python then keeps ignoring it: Ctrl-C would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _start(argv, tmp_path, log):
    return subprocess.Popen(argv, cwd=ROOT, env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=open(log, "w"), text=True, preexec_fn=_default_signals)


def _wait_for(condition, proc, timeout=600, what=""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended (code {proc.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _images(out):
    return sorted((out / "images").glob("*.png"))


@pytest.fixture
def prompts(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("# two prompts\nportrait photo of a person\n\nwatercolor painting of a person, red hat\n")
    return path


def test_interrupt_resume_and_a_dead_server(cli_setup, servers, prompts, tmp_path):
    a, b = servers
    out = tmp_path / "sweep"
    argv = _argv(cli_setup, out, [a.url, b.url], prompts)

    # 1. Ctrl-C once the first images are in: a clean stop, no half-written file, nothing left on the servers.
    proc = _start(argv, tmp_path, tmp_path / "run1.log")
    _wait_for(lambda: len(_images(out)) >= 2, proc, what="the first images")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 130, (tmp_path / "run1.log").read_text()[-4000:]
    log1 = (tmp_path / "run1.log").read_text()
    assert "interrupted" in log1
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert json.loads((out / "sweep.json").read_text())["settings"]["steps"] == 2
    for server in servers:
        _idle(server)
    first = len(_images(out))
    assert 2 <= first < JOBS, log1[-3000:]
    before = len(_outputs(a)) + len(_outputs(b))
    # A render the interrupt did not stop in time is on a server but not in the sweep. When the next run queues
    # that job on the same server, ComfyUI answers from its cache: the image arrives with no new file.
    unkept = before - first

    # 2. The same command renders only the rest; server a is killed after its first render of this run.
    a_before = len(_outputs(a))
    proc = _start(argv, tmp_path, tmp_path / "run2.log")

    def a_rendered_and_delivered():
        # a has rendered one more, and the sweep holds every image the servers made (none lost with a)
        return len(_outputs(a)) > a_before and len(_images(out)) - first >= len(_outputs(a)) + len(_outputs(b)) - before

    _wait_for(a_rendered_and_delivered, proc, what="a render on server a")
    os.killpg(a.proc.pid, signal.SIGKILL)
    a.proc.wait(30)
    stdout, _ = proc.communicate(timeout=900)
    log2 = (tmp_path / "run2.log").read_text()
    assert proc.returncode == 0, log2[-4000:]
    assert stdout.strip() == str(out)
    assert f"{JOBS} image(s) in this grid, {first} already rendered, {JOBS - first} to render on 2 server(s)" in log2
    assert f"server {a.url} is gone" in log2 and f"its jobs go to {b.url}" in log2
    _idle(b)
    assert len(_images(out)) == JOBS
    rendered = len(_outputs(a)) + len(_outputs(b)) - before
    assert JOBS - first - unkept <= rendered <= JOBS - first, f"{rendered} renders for {JOBS - first} images: " \
        f"an image was rendered twice or lost ({unkept} render(s) of the first run not kept)"

    # 3. The reports: one row per image with every setting and its numbers, the contact sheet and the chart.
    with open(out / "scores.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["file"] for r in rows) == sorted(f"images/{p.name}" for p in _images(out))
    assert sum(r["kind"] == "baseline" for r in rows) == 4
    for row in rows:
        assert row["steps"] == "2" and row["width"] == "64" and row["seed"] in ("3", "4")
        assert float(row["prompt_adherence"]) == float(row["prompt_adherence"])  # a number
        if row["kind"] == "pulid":
            assert row["weight"] in ("0.8", "1") and row["method"] == "fidelity" and row["face"] == "face"
            assert -1 <= float(row["preservation"]) <= 1
            assert row["likeness"] == "no face" or -1 <= float(row["likeness"]) <= 1
    for name in ("contact_sheet.png", "tradeoff.png"):
        assert np.asarray(Image.open(out / name)).std() > 0

    # 4. Again: nothing left to render; another setting is refused with the difference named.
    done = subprocess.run(_argv(cli_setup, out, [b.url], prompts), cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{JOBS} already rendered, 0 to render" in done.stderr
    done = subprocess.run(_argv(cli_setup, out, [b.url], prompts, "--cfg", "3.0"), cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    assert "holds a sweep with other settings: cfg: 2.0 in this sweep, 3.0 now" in done.stderr, done.stderr[-3000:]


def test_sigterm_stops_as_cleanly_as_ctrl_c(cli_setup, servers, prompts, tmp_path):
    """`kill`, a process manager or a container stop sends SIGTERM: the sweep stops as on Ctrl-C (its prompts taken
    off the server, no half-written file, exit 128 + 15) and the same command then renders only the rest."""
    b = servers[1]
    _idle(b)
    before = len(_outputs(b))
    out = tmp_path / "sweep"
    argv = _argv(cli_setup, out, [b.url], prompts, "--seeds", "7,8")
    proc = _start(argv, tmp_path, tmp_path / "run1.log")
    _wait_for(lambda: len(_images(out)) >= 1, proc, what="the first image")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 128 + signal.SIGTERM, (tmp_path / "run1.log").read_text()[-4000:]
    assert "interrupted (SIGTERM)" in (tmp_path / "run1.log").read_text()
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]
    _idle(b)
    first = len(_images(out))
    assert 1 <= first < JOBS
    # At most the render that was finishing as the signal came is on the server without reaching the sweep;
    # the prompt waiting in the server's queue was taken off it.
    assert len(_outputs(b)) - before <= first + 1

    done = subprocess.run(argv, cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=900,
                          preexec_fn=_default_signals)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{JOBS} image(s) in this grid, {first} already rendered, {JOBS - first} to render" in done.stderr
    assert len(_images(out)) == JOBS


def test_bad_input_stops_before_anything_renders(cli_setup, servers, prompts, tmp_path):
    b = servers[1]
    _idle(b)
    rendered = len(_outputs(b))

    def run(*extra, urls=(b.url,), prompts=prompts):
        return subprocess.run(_argv(cli_setup, tmp_path / "out", urls, prompts, *extra), cwd=ROOT,
                              env=_env(tmp_path), capture_output=True, text=True, timeout=600)

    done = run(urls=(b.url, f"http://127.0.0.1:{free_port()}"))
    assert done.returncode == 1 and "No ComfyUI answers at http://127.0.0.1:" in done.stderr, done.stderr[-3000:]
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 30, np.uint8)).save(blank)
    done = run("--face", str(blank))
    assert done.returncode == 1 and f"No face found in the face photo {blank}" in done.stderr, done.stderr[-3000:]
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing here\n\n")
    done = run(prompts=empty)
    assert done.returncode == 1 and "has no prompts" in done.stderr, done.stderr[-3000:]
    assert len(_outputs(b)) == rendered
    assert not (tmp_path / "out" / "images").exists()


def test_own_server_started_and_stopped(cli_setup, prompts, tmp_path):
    """Without --server the sweep starts one ComfyUI itself, as `generate --comfyui` does, and stops it."""
    models, _, yaml = cli_setup
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    one = tmp_path / "one.txt"
    one.write_text(prompts.read_text().splitlines()[1] + "\n")
    argv = _argv(cli_setup, tmp_path / "out", [], one, "--comfyui", COMFYUI, "--extra-model-paths", str(yaml),
                 "--cpu", "--weights", "1.0", "--seeds", "5")
    done = subprocess.run(argv, cwd=ROOT, env=dict(_env(tmp_path), TMPDIR=str(scratch)), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "starting ComfyUI from" in done.stderr
    assert "2 image(s) in this grid, 0 already rendered, 2 to render on 1 server(s)" in done.stderr
    assert len(_images(tmp_path / "out")) == 2
    assert not list(scratch.glob("pulid-sweep-*")), "the sweep left its server's temporary folder behind"
