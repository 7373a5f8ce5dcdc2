"""pulid.scoring and the one read of the EVA-CLIP file: the Evaluate node and the sweep give the same numbers for
the same images (one scoring path), and both towers come from one read of the file while the face encoder's
loader still reads it once and never builds the text tower."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import open_clip.transformer
from pulid import state_dict
from pulid.catalog import ANTELOPEV2, EVA_CLIP, FACEXLIB_DETECTION
from pulid.clip_text import load_clip_text
from pulid.eva_clip import load_eva_clip
from pulid.face import FaceEncoder
from pulid.tradeoff import load_clip
from pulid_cli.sweep import command, grid
from pulid_cli.sweep import report as sweep_report
from testkit import make_face_models as mfm
from testkit.make_face_models import face_photo, image_batch
from testkit.pack import pack_module

FACELESS = np.full((640, 640, 3), 30, np.uint8)
LONG_PROMPT = ", ".join(["a very detailed portrait photo of a smiling woman in a garden"] * 10)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A models folder in ComfyUI's layout (the sweep reads it), with small generated files."""
    return mfm.write_models_folder(tmp_path_factory.mktemp("scoring_models"))


@pytest.fixture
def reads(monkeypatch):
    """The paths pulid.state_dict.read opened, in order (every model file of the library goes through it)."""
    opened = []
    original = state_dict.read

    def counting(path, describe):
        opened.append(str(path))
        return original(path, describe)

    monkeypatch.setattr(state_dict, "read", counting)
    return opened


@pytest.fixture
def text_towers(monkeypatch):
    """How many open_clip TextTransformers were built (clip_text builds its tower with that class)."""
    built = []

    class Counted(open_clip.transformer.TextTransformer):
        def __init__(self, *args, **kwargs):
            built.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(open_clip.transformer, "TextTransformer", Counted)
    return built


def eva_path(models):
    return str(models / EVA_CLIP.folder / EVA_CLIP.filename)


def encoder_from(models, eva):
    return FaceEncoder(eva, str(models / ANTELOPEV2.folder), str(models / FACEXLIB_DETECTION.folder),
                       providers="CPU")


# ------------------------------------------------------------------------------------------- one read
def test_both_towers_from_one_read(models, reads, text_towers):
    path = eva_path(models)
    clip = load_clip(path)
    assert reads == [path] and len(text_towers) == 1
    # the same towers as the two loaders give, each reading the file itself (the old way: two reads)
    vision, text = load_eva_clip(path), load_clip_text(path)
    assert reads == [path] * 3
    assert all(torch.equal(a, b) for a, b in zip(clip.vision.state_dict().values(), vision.state_dict().values()))
    assert all(torch.equal(a, b) for a, b in zip(clip.text.state_dict().values(), text.state_dict().values()))
    assert torch.equal(clip.text.encode(["a red hat"])[0], text.encode(["a red hat"])[0])


def test_face_encoder_reads_the_file_once_and_builds_no_text_tower(models, reads, text_towers):
    path = eva_path(models)
    encoder = encoder_from(models, path)
    assert reads.count(path) == 1 and text_towers == []
    assert encoder.eva_clip_path == path
    load_eva_clip(path)
    assert reads.count(path) == 2 and text_towers == []


def test_face_encoder_takes_a_loaded_tower_and_the_sweep_reuses_it(models, reads, text_towers):
    path = eva_path(models)
    clip = load_clip(path)
    encoder = encoder_from(models, clip.vision)  # the sweep's order: both towers once, then the face encoder
    assert encoder.eva is clip.vision and reads.count(path) == 1
    again = load_clip(path, vision=encoder.eva)  # a face encoder loaded first: only the text tower is built
    assert again.vision is encoder.eva and reads.count(path) == 2 and len(text_towers) == 2
    assert next(again.text.parameters()).dtype == next(encoder.eva.parameters()).dtype
    reads.clear()
    encoder, clip = command.load_scorers(models, path)  # the sweep's scoring models: one read for all of them
    assert encoder.eva is clip.vision and reads.count(path) == 1 and len(text_towers) == 3


# ------------------------------------------------------------------------------------------- one path
def test_evaluate_node_and_sweep_give_the_same_numbers(models, tmp_path, monkeypatch):
    """Three images, the middle one faceless, against one baseline: the node's numbers are the sweep's."""
    runtime, evaluate = pack_module("nodes.runtime"), pack_module("nodes.evaluate")
    monkeypatch.setattr(runtime, "managed", lambda module: SimpleNamespace(model=module))
    monkeypatch.setattr(runtime, "load_models", lambda *patchers: None)
    monkeypatch.setattr(runtime, "check_interrupted", lambda: None)
    seen = []

    def recorded(*args, **kwargs):
        seen.append(score_batch(*args, **kwargs))
        return seen[-1]

    score_batch = evaluate.score_batch
    monkeypatch.setattr(evaluate, "score_batch", recorded)

    encoder = encoder_from(models, eva_path(models))
    reference, baseline = face_photo(1), face_photo(7)
    pictures = [face_photo(1), FACELESS, face_photo(3, (208, 208))]
    handle = runtime.FaceEncoderHandle(encoder=encoder, patcher=None)
    node = pack_module("nodes").NODE_CLASS_MAPPINGS["PuLIDSDXLEvaluate"]()
    likeness, adherence, kept, report, _, _ = node.evaluate(handle, image_batch(reference), image_batch(*pictures),
                                                            LONG_PROMPT, "largest", image_batch(baseline))
    (got,) = seen
    assert got.likeness[1] is None and None not in (got.likeness[0], got.likeness[2])
    assert (likeness, adherence, kept) == (np.mean([got.likeness[0], got.likeness[2]]), np.mean(got.adherence),
                                           np.mean(got.preservation))
    assert got.notes[0].startswith("truncated: 77 of") and got.notes[0] in report

    # The sweep: the same pictures as PuLID images of one face, prompt and seed, and the baseline of that seed.
    photo = tmp_path / "ann.png"
    Image.fromarray(reference).save(photo)
    faces = {"ann": photo}
    jobs = grid.plan_jobs(faces, [LONG_PROMPT], [0.6, 0.8, 1.0], ["fidelity"], [5])
    folder = tmp_path / "images"
    folder.mkdir()
    for job, picture in zip(jobs, [baseline, *pictures]):
        Image.fromarray(picture).save(folder / job.name)
    scores = sweep_report.score(jobs, folder, faces, encoder, load_clip(eva_path(models), vision=encoder.eva))
    rows = [scores[job] for job in jobs[1:]]
    assert rows[1]["likeness"] is None and scores[jobs[0]]["preservation"] is None
    # Exact, not within a budget: one function on the same pixels in the same batches in one process (the three
    # images in one vision-tower call, the baseline alone in another) is one float computation.
    for name in ("likeness", "adherence", "preservation"):
        assert [row[name] for row in rows] == getattr(got, name), name
    assert [row["note"] for row in rows] == got.notes
