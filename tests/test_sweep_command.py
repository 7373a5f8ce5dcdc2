"""`python -m pulid_cli sweep` without a ComfyUI: the grid, the manifest, the scheduler (fake servers), the csv
and the prompt file. The real servers are in tests/host/test_sweep.py (this file has another name: pytest
imports test files by basename, and two test_sweep modules would clash)."""
import asyncio
import csv
import io
import json
import logging

import pytest
import torch

from pulid.errors import PulidError
from pulid_cli import files
from pulid_cli.sweep import command, grid, report, scheduler
from pulid_cli.sweep import sheet as contact
from pulid_cli.sweep import manifest as sweep_manifest
from pulid_cli.comfyui import ServerGone
from pulid_cli.main import main
from testkit.numerics import assert_agree, assert_close


# ---------------------------------------------------------------------------------- the grid
def test_baselines_once_per_prompt_and_seed_then_every_combination():
    jobs = grid.plan_jobs(["ann", "bob"], ["a", "b"], [0.8, 1.0], ["fidelity", "style"], [1, 2])
    baselines = [j for j in jobs if j.baseline]
    assert [(j.prompt, j.seed) for j in baselines] == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert jobs[:4] == baselines  # first: every other image is compared with its baseline
    assert all(j.weight == 0 and j.face is None for j in baselines)
    assert len(jobs) == 4 + 2 * 2 * 2 * 2 * 2
    assert len({j.name for j in jobs}) == len(jobs)  # one file per image
    job = next(j for j in jobs if j.face == "bob" and j.method == "style" and j.weight == 0.8 and j.seed == 2)
    assert job.baseline_job == grid.Job("a" if job.prompt == "a" else "b", 2)
    assert job.name == f"bob_{grid.prompt_key(job.prompt)}_style_w0.8_s2.png"
    assert job.baseline_job.name == f"baseline_{grid.prompt_key(job.prompt)}_s2.png"


def test_file_names_follow_the_prompt_not_its_line():
    one = {j.name for j in grid.plan_jobs(["f"], ["a", "b"], [1.0], ["fidelity"], [1])}
    other = {j.name for j in grid.plan_jobs(["f"], ["b", "a", "c"], [1.0], ["fidelity"], [1])}
    assert one < other


def test_prompt_file(tmp_path):
    path = tmp_path / "prompts.txt"
    path.write_text("# a comment\n\n  first prompt  \nsecond\nfirst prompt\n", encoding="utf-8")
    assert grid.read_prompts(path) == ["first prompt", "second"]
    path.write_text("# only a comment\n\n   \n", encoding="utf-8")
    with pytest.raises(PulidError, match="has no prompts"):
        grid.read_prompts(path)
    with pytest.raises(PulidError, match="Prompt file not found"):
        grid.read_prompts(tmp_path / "none.txt")


def test_default_prompts_are_varied():
    prompts = grid.read_prompts(grid.DEFAULT_PROMPTS)
    assert len(prompts) >= 20
    text = " ".join(prompts)
    for word in ("elderly", "child", "glasses", "painting", "anime", "angry", "beach", "astronaut"):
        assert word in text


def test_lists_and_faces(tmp_path):
    assert grid.parse_list("0.6, 0.8,,1,0.8", float, "--weights") == [0.6, 0.8, 1.0]
    with pytest.raises(PulidError, match="--seeds: 'x' is not an integer"):
        grid.parse_list("1,x", int, "--seeds")
    (tmp_path / "a").mkdir()
    (tmp_path / "Ann Lee.png").write_bytes(b"1")
    (tmp_path / "a" / "Ann Lee.jpg").write_bytes(b"2")
    assert list(grid.face_ids([tmp_path / "Ann Lee.png"])) == ["Ann-Lee"]
    with pytest.raises(PulidError, match="both called 'Ann-Lee'"):
        grid.face_ids([tmp_path / "Ann Lee.png", tmp_path / "a" / "Ann Lee.jpg"])
    with pytest.raises(PulidError, match="Face image not found"):
        grid.face_ids([tmp_path / "nobody.png"])


# ---------------------------------------------------------------------------------- the manifest
SETTINGS = {"checkpoint": "sdxl.safetensors", "pulid_file": "pulid_v1.1.safetensors", "steps": 30, "cfg": 5.0,
            "width": 1024, "height": 1024, "negative": "blurry",
            "models": {"pulid_file": "aa" * 32, "eva_clip": "bb" * 32}}
FACE = {"ann": {"path": "/x/ann.png", "sha256": "cc" * 32}}


def manifest(settings=SETTINGS, faces=FACE, prompts=("a",), weights=(1.0,), methods=("fidelity",), seeds=(1,)):
    return sweep_manifest.new_manifest(settings, faces, prompts, weights, methods, seeds)


def test_same_settings_grow_the_grid():
    old = manifest()
    grown = sweep_manifest.merge_manifest(old, manifest(faces={"bob": {"path": "/x/bob.png", "sha256": "dd" * 32}},
                                            prompts=("b", "a"), weights=(0.5,), seeds=(1, 2)))
    assert grown["settings"] == SETTINGS
    assert grown["grid"]["prompts"] == ["a", "b"] and grown["grid"]["weights"] == [1.0, 0.5]
    assert grown["grid"]["seeds"] == [1, 2] and list(grown["grid"]["faces"]) == ["ann", "bob"]
    assert sweep_manifest.merge_manifest(None, old) == old
    assert sweep_manifest.merge_manifest(old, old) == old


def test_other_settings_are_refused_with_the_difference_named():
    other = dict(SETTINGS, steps=20, models=dict(SETTINGS["models"], eva_clip="ee" * 32))
    with pytest.raises(PulidError) as err:
        sweep_manifest.merge_manifest(manifest(), manifest(settings=other), where="/out")
    text = str(err.value)
    assert "/out holds a sweep with other settings" in text
    assert "steps: 30 in this sweep, 20 now" in text
    assert "eva_clip: sha256 bbbbbbbbbbbb in this sweep, eeeeeeeeeeee now" in text
    assert "pulid_file" not in text and "cfg" not in text
    with pytest.raises(PulidError, match="face 'ann': another photo"):
        sweep_manifest.merge_manifest(manifest(), manifest(faces={"ann": {"path": "/y/ann.png", "sha256": "ff" * 32}}))


def test_file_hash_is_cached_by_size_and_mtime(tmp_path, monkeypatch):
    import hashlib
    import os

    path, cache = tmp_path / "model.bin", tmp_path / "cache" / "sha256.json"
    path.write_bytes(b"weights")
    want = hashlib.sha256(b"weights").hexdigest()
    assert sweep_manifest.file_sha256(path, cache) == want
    stat = path.stat()
    entry = json.loads(cache.read_text())[str(path.resolve())]
    entry["sha256"] = "remembered"
    cache.write_text(json.dumps({str(path.resolve()): entry}))
    assert sweep_manifest.file_sha256(path, cache) == "remembered"  # not read again
    path.write_bytes(b"other!!")  # same size, new mtime
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert sweep_manifest.file_sha256(path, cache) == hashlib.sha256(b"other!!").hexdigest()


def test_atomic_write_leaves_no_half_file(tmp_path, monkeypatch):
    target = tmp_path / "scores.csv"
    target.write_text("old")

    def broken(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", broken)
    with pytest.raises(KeyboardInterrupt):
        files.write_atomic(target, b"new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["scores.csv"]


# ---------------------------------------------------------------------------------- the scheduler
class FakeServers:
    """render(server, job) taking `delay[server]` seconds; a server in `dies_at` dies that many seconds after the
    start: the renders in flight there lose their connection, later ones are refused."""

    def __init__(self, delay, dies_at=None, fail=None):
        self.delay, self.dies_at, self.fail = delay, dies_at or {}, fail
        self.rendered = {}  # job -> server
        self.in_flight, self.most = {}, {}
        self.start = None

    def _dead(self, server):
        return server in self.dies_at and asyncio.get_running_loop().time() - self.start >= self.dies_at[server]

    async def render(self, server, job):
        loop = asyncio.get_running_loop()
        self.start = self.start if self.start is not None else loop.time()
        if self._dead(server):
            raise ServerGone("Cannot connect to host (Connection refused)")
        self.in_flight[server] = self.in_flight.get(server, 0) + 1
        self.most[server] = max(self.most.get(server, 0), self.in_flight[server])
        try:
            end = loop.time() + self.delay[server]
            while loop.time() < end:
                await asyncio.sleep(min(0.005, end - loop.time()))
                if self._dead(server):
                    raise ServerGone("Server disconnected")
            if self.fail == job:
                raise PulidError("Node 7 (PuLIDSDXLApply): boom")
            return f"{job}@{server}"
        finally:
            self.in_flight[server] -= 1

    async def done(self, job, result):
        assert job not in self.rendered, f"{job} rendered twice"
        self.rendered[job] = result.split("@")[1]


def run(fake, jobs, servers, per_server=2):
    return asyncio.run(scheduler.run_jobs(jobs, servers, fake.render, fake.done, per_server=per_server))


def test_every_job_once_and_at_most_per_server_in_flight():
    fake = FakeServers({"a": 0.01, "b": 0.02})
    run(fake, list(range(30)), ["a", "b"])
    assert sorted(fake.rendered) == list(range(30))
    assert fake.most == {"a": 2, "b": 2}
    counts = [list(fake.rendered.values()).count(s) for s in "ab"]
    assert counts[0] > counts[1] > 0  # the faster server takes more: whoever is free gets the next job
    fake = FakeServers({"a": 0.01})
    run(fake, list(range(5)), ["a"], per_server=1)
    assert fake.most == {"a": 1}


def test_a_dead_servers_jobs_move_to_the_others(caplog):
    fake = FakeServers({"a": 0.02, "b": 0.1}, dies_at={"b": 0.15})
    with caplog.at_level(logging.WARNING):
        run(fake, list(range(40)), ["a", "b"])
    assert sorted(fake.rendered) == list(range(40))
    assert "server b is gone (Server disconnected): its jobs go to a" in caplog.text
    assert list(fake.rendered.values()).count("b") == 2  # its first two; the two in flight moved to a
    assert caplog.text.count("is gone") == 1


class YieldingCondition(asyncio.Condition):
    """asyncio.Condition whose every acquire yields to the loop first: a sibling worker gets to queue on the lock
    while another holds or wants it (what a busier loop does), the order in which a scheduler bug shows."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        acquire = self.acquire

        async def yielding_acquire():
            await asyncio.sleep(0)
            return await acquire()

        self.acquire = yielding_acquire


@pytest.mark.parametrize("jobs, per_server", [(1, 2), (2, 2), (3, 3), (8, 2)])
def test_no_render_reaches_a_server_after_its_server_gone(monkeypatch, jobs, per_server):
    """ServerGone marks its server dead before the worker awaits anything (giving the job back waits on the lock):
    no sibling worker of that server, however the lock is contended, sends a job there afterwards."""
    calls = []  # (server, job, whether that server had raised ServerGone before this call)
    gone = set()

    async def render(server, job):
        calls.append((server, job, server in gone))
        if server == "b":
            gone.add(server)
            raise ServerGone("Server disconnected")
        await asyncio.sleep(0)
        return f"{job}@{server}"

    rendered = {}

    async def done(job, result):
        rendered[job] = result

    monkeypatch.setattr(asyncio, "Condition", YieldingCondition)
    asyncio.run(scheduler.run_jobs(list(range(jobs)), ["b", "a"], render, done, per_server=per_server))
    assert rendered == {job: f"{job}@a" for job in range(jobs)}
    assert [call for call in calls if call[2]] == []


def test_a_slow_server_is_not_dead(caplog):
    fake = FakeServers({"a": 0.005, "slow": 0.5})
    with caplog.at_level(logging.WARNING):
        run(fake, list(range(8)), ["a", "slow"])
    assert sorted(fake.rendered) == list(range(8))
    assert "slow" in fake.rendered.values() and "gone" not in caplog.text


def test_every_server_gone_is_an_error_naming_what_is_left():
    fake = FakeServers({"a": 0.01, "b": 0.01}, dies_at={"a": 0.015, "b": 0.025})
    with pytest.raises(PulidError, match=r"Every server is gone .*image\(s\) not rendered"):
        run(fake, list(range(6)), ["a", "b"])
    assert len(fake.rendered) < 6


def test_a_failed_render_stops_the_run_with_comfyuis_message():
    fake = FakeServers({"a": 0.01, "b": 0.01}, fail=3)
    with pytest.raises(PulidError, match="Node 7"):
        run(fake, list(range(10)), ["a", "b"])


# ---------------------------------------------------------------------------------- the csv and reports
def test_scores_csv_has_one_row_per_image_with_every_setting(tmp_path):
    settings = dict(SETTINGS)
    base, job = grid.Job("a, \"quoted\" prompt", 7), grid.Job("a, \"quoted\" prompt", 7, "ann", 0.8, "style")
    rows = [report.Row(base, settings, adherence=25.5), report.Row(job, settings, 0.61234, 27.25, 0.9),
            report.Row(grid.Job("b", 7, "ann", 0.8, "style"), settings, None, 20.0, 0.5, "truncated: 77 of 90 tokens")]
    text = report.csv_text(rows)
    records = list(csv.DictReader(io.StringIO(text)))
    assert [r["kind"] for r in records] == ["baseline", "pulid", "pulid"]
    assert records[1] == {
        "file": f"images/{job.name}", "kind": "pulid", "face": "ann", "prompt": 'a, "quoted" prompt',
        "weight": "0.8", "method": "style", "seed": "7", "checkpoint": "sdxl.safetensors",
        "pulid_file": "pulid_v1.1.safetensors", "steps": "30", "cfg": "5.0", "width": "1024", "height": "1024",
        "likeness": "0.6123", "prompt_adherence": "27.25", "preservation": "0.9000", "note": ""}
    assert records[0]["face"] == "" and records[0]["weight"] == "0" and records[0]["likeness"] == ""
    assert records[2]["likeness"] == "no face" and records[2]["note"].startswith("truncated")
    (tmp_path / "scores.csv").write_text(text)
    again = report.read_scores(tmp_path / "scores.csv", {f"images/{r.job.name}": r.job for r in rows}, settings)
    assert report.csv_text([again[r.job] for r in rows]) == text


def test_chart_points_mean_and_sd_over_prompts_and_seeds():
    s = dict(SETTINGS)
    rows = [report.Row(grid.Job("a", 1), s, adherence=30.0)]
    rows += [report.Row(grid.Job(p, seed, "ann", 1.0, "fidelity"), s, like, adh, 0.5)
             for (p, seed, like, adh) in (("a", 1, 0.5, 20.0), ("a", 2, 0.7, 22.0), ("b", 1, None, 24.0))]
    rows += [report.Row(grid.Job("a", 1, "ann", 0.5, "fidelity"), s, None, 28.0, 0.9)]
    groups = dict(report.chart_groups(rows))
    assert set(groups) == {"ann fidelity 1", "ann fidelity 0.5"}
    assert report.mean_sd([r.likeness for r in groups["ann fidelity 1"]]) == pytest.approx((0.6, 0.1414213562))
    assert report.mean_sd([r.adherence for r in groups["ann fidelity 1"]]) == pytest.approx((22.0, 2.0))
    assert report.mean_sd([r.likeness for r in groups["ann fidelity 0.5"]]) == (None, None)  # no face anywhere
    assert report.mean_sd([3.0]) == (3.0, 0.0)


def test_contact_sheet_shows_every_image_and_its_numbers(tmp_path):
    import numpy as np
    from PIL import Image

    s = dict(SETTINGS)
    rows = [report.Row(grid.Job("a", 1), s, adherence=30.0), report.Row(grid.Job("a", 1, "ann", 1.0, "fidelity"), s, 0.5, 20.0, 0.7)]
    for i, row in enumerate(rows):
        Image.fromarray(np.full((64, 64, 3), 60 + 120 * i, np.uint8)).save(tmp_path / row.job.name)
    sheet = np.asarray(Image.open(io.BytesIO(contact.contact_sheet(rows, tmp_path, thumb=64))))
    assert sheet.shape[1] == 64 + 68 and sheet.shape[0] > 2 * 64
    assert (sheet == 60).all(axis=2).sum() >= 64 * 64 * 0.9 and (sheet == 180).all(axis=2).sum() >= 64 * 64 * 0.9


# ---------------------------------------------------------------------------------- bad input from the command line
def test_command_line_errors(tmp_path, caplog):
    face = tmp_path / "me.png"
    face.write_bytes(b"x")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    base = ["sweep", "--face", str(face), "--out", str(tmp_path / "out"), "--models-dir", str(tmp_path)]
    with caplog.at_level(logging.ERROR):
        assert main(base + ["--server", "http://127.0.0.1:9", "--prompts", str(empty)]) == 1
    assert "has no prompts" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(base + ["--prompts", str(empty)]) == 1
    assert "Say which ComfyUI renders" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(base + ["--server", "http://127.0.0.1:9", "--weights", "0.5,heavy"]) == 1
    assert "--weights: 'heavy' is not a number" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        assert main(base + ["--server", "http://127.0.0.1:9"]) == 1
    assert "not found: the sweep scores with the same model files the servers use" in caplog.text
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------- scoring on generated models
@pytest.fixture(scope="module")
def scoring(tmp_path_factory):
    """A models folder in ComfyUI's layout with small generated files, and the face encoder the sweep loads from it."""
    from testkit import make_face_models as mfm

    models = mfm.write_models_folder(tmp_path_factory.mktemp("sweep_models"))
    _, paths = command.model_paths(models, None)
    encoder, clip = command.load_scorers(models, paths["eva_clip"])
    return models, paths, encoder, clip


def f32(*values):
    """Scores as float32 (the precision of the embeddings they come from), for the float rule."""
    return torch.tensor(values, dtype=torch.float32)


def _face(seed, side=128):
    import numpy as np

    from testkit import make_face_models as mfm

    image = mfm.draw_face(np.full((640, 640, 3), 30, np.uint8), (336, 304), side)
    image[240:368, 272:400] = np.clip(image[240:368, 272:400].astype(int)
                                      + np.random.default_rng(seed).integers(-6, 7, (128, 128, 3)), 0, 255)
    return image


def test_scores_are_the_librarys_numbers_and_kept_on_the_next_run(scoring, tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from pulid.similarity import face_similarity
    from pulid.tradeoff import preservation, prompt_adherence

    models, paths, encoder, clip = scoring
    face = tmp_path / "ann.png"
    Image.fromarray(_face(1)).save(face)
    faces = {"ann": face}
    manifest = sweep_manifest.new_manifest(SETTINGS, {"ann": {"path": str(face), "sha256": "x"}}, ["a red hat", "the sea"],
                               [1.0], ["fidelity"], [5])
    jobs = grid.plan_jobs(faces, ["a red hat", "the sea"], [1.0], ["fidelity"], [5])
    images = {jobs[0]: _face(2), jobs[1]: np.full((640, 640, 3), 90, np.uint8),  # baselines
              jobs[2]: _face(1), jobs[3]: np.full((640, 640, 3), 90, np.uint8)}  # the photo itself; no face
    (tmp_path / "out" / "images").mkdir(parents=True)
    for job, image in images.items():
        Image.fromarray(image).save(tmp_path / "out" / "images" / job.name)
    rows = {r.job: r for r in command.report(tmp_path / "out", manifest, lambda: (encoder, clip))}
    assert list(rows) == jobs

    # The library's own calls (in other batches: the same float32 computation by another route).
    _, found = face_similarity(encoder, [_face(1)], [images[jobs[2]]])
    assert_agree(f32(rows[jobs[2]].likeness), f32(found[0].similarity))
    assert_close(f32(rows[jobs[2]].likeness), torch.tensor([1.0], dtype=torch.float64), "network")  # the photo
    assert rows[jobs[3]].likeness is None and rows[jobs[0]].likeness is None
    want = prompt_adherence(clip, [images[j] for j in jobs], [j.prompt for j in jobs])
    assert_agree(f32(*[rows[j].adherence for j in jobs]), f32(*want))
    kept = preservation(clip, [images[jobs[2]], images[jobs[3]]], [images[jobs[0]], images[jobs[1]]])
    assert_agree(f32(rows[jobs[2]].preservation, rows[jobs[3]].preservation), f32(*kept))
    # the same picture as its baseline
    assert_close(f32(rows[jobs[3]].preservation), torch.tensor([1.0], dtype=torch.float64), "network")
    assert rows[jobs[0]].preservation is None

    text = (tmp_path / "out" / "scores.csv").read_text()
    assert text.count("\n") == 5 and ",no face," in text
    for name in ("contact_sheet.png", "tradeoff.png"):
        assert Image.open(tmp_path / "out" / name).size[0] > 100

    def no_scoring(*args, **kwargs):
        raise AssertionError("scored again")

    monkeypatch.setattr(command, "score", no_scoring)
    command.report(tmp_path / "out", manifest, no_scoring)  # everything is in scores.csv already
    assert (tmp_path / "out" / "scores.csv").read_text() == text


def test_a_face_photo_without_a_face_is_refused(scoring, tmp_path):
    import numpy as np
    from PIL import Image

    Image.fromarray(_face(1)).save(tmp_path / "ann.png")
    Image.fromarray(np.full((320, 320, 3), 30, np.uint8)).save(tmp_path / "wall.png")
    (tmp_path / "notes.png").write_text("not a picture")
    models = scoring[0]
    command.check_faces(models, {"ann": tmp_path / "ann.png"})
    with pytest.raises(PulidError, match="No face found in the face photo .*wall.png"):
        command.check_faces(models, {"ann": tmp_path / "ann.png", "wall": tmp_path / "wall.png"})
    with pytest.raises(PulidError, match="The face photo .*notes.png cannot be read as an image"):
        command.check_faces(models, {"notes": tmp_path / "notes.png"})
