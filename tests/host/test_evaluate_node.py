"""Evaluate PuLID Batch node: the node function on generated models without ComfyUI (its model management
replaced by a recorder), then the same node validated and executed by ComfyUI's PromptExecutor on both hosts
(COMFYUI_PATH).

The numbers are the library's (pulid.similarity, pulid.tradeoff, tested there): here the node must pass them
through unchanged, label them, and load the text tower once, through model management.
"""
import inspect
import re
import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from testkit import make_face_models as mfm
from testkit.make_face_models import face_photo, image_batch as batch
from testkit.numerics import assert_close
from testkit.pack import PACK, import_pack

FACELESS = np.full((640, 640, 3), 30, np.uint8)
PROMPT = "portrait photo of a woman in a garden, (natural light:1.2), 85mm"
LONG_PROMPT = ", ".join(["a very detailed portrait photo of a smiling woman"] * 12)


def lib(name):
    import_pack()
    return sys.modules[f"{PACK}.{name}"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate_node_models")
    return SimpleNamespace(eva=mfm.write_eva_clip_checkpoint(str(root / "eva.pt"), "eva-clip"),
                           vision_only=mfm.write_eva_clip_checkpoint(str(root / "eva_vision.safetensors"), "timm"),
                           antelopev2=mfm.write_antelopev2(str(root / "antelopev2")),
                           facexlib=mfm.write_facexlib(str(root / "facexlib")))


@pytest.fixture
def comfy_runtime(monkeypatch):
    """nodes/runtime's ComfyUI calls replaced by a recorder: what was wrapped and what was loaded."""
    runtime = lib("nodes.runtime")
    calls = SimpleNamespace(managed=[], loaded=[])

    def managed(module):
        calls.managed.append(module)
        return SimpleNamespace(model=module)

    monkeypatch.setattr(runtime, "managed", managed)
    monkeypatch.setattr(runtime, "load_models", lambda *patchers: calls.loaded.append(patchers))
    monkeypatch.setattr(runtime, "check_interrupted", lambda: None)
    return calls


def make_handle(models, eva):
    face = lib("pulid.face")
    encoder = face.FaceEncoder(eva, models.antelopev2, models.facexlib, providers="CPU")
    return lib("nodes.runtime").FaceEncoderHandle(encoder=encoder, patcher=SimpleNamespace(name="face patcher"))


@pytest.fixture(scope="module")
def node():
    return import_pack().NODE_CLASS_MAPPINGS["PuLIDSDXLEvaluate"]()


def test_scores_a_batch_and_loads_the_text_tower_once(node, models, comfy_runtime):
    handle = make_handle(models, models.eva)
    assert handle.encoder.eva_clip_path == models.eva and handle.clip_text is None
    reference = face_photo(1)
    images = [reference, FACELESS, face_photo(3, (208, 208))]
    labels = "w 0 baseline\nw 0.6 fidelity\nw 1.0 style"
    out = node.evaluate(handle, batch(reference), batch(*images), PROMPT, "largest", batch(reference), labels)
    likeness, adherence, kept, report, chart, annotated = out

    # Text tower: wrapped for model management once, loaded with the face encoder's modules.
    clip_text = lib("pulid.clip_text")
    assert len(comfy_runtime.managed) == 1 and isinstance(comfy_runtime.managed[0], clip_text.ClipText)
    assert comfy_runtime.loaded == [(handle.patcher, handle.clip_text)]
    assert handle.clip_text.model is comfy_runtime.managed[0]

    # The library's numbers, passed through.
    tradeoff, similarity = lib("pulid.tradeoff"), lib("pulid.similarity")
    mean, results = similarity.face_similarity(handle.encoder, [reference], images)
    clip = tradeoff.Clip(vision=handle.encoder.eva, text=handle.clip_text.model)
    want_adherence = tradeoff.prompt_adherence(clip, batch(*images), PROMPT)
    want_kept = tradeoff.preservation(clip, batch(*images), batch(reference))
    assert likeness == mean and [r.similarity for r in results][1] is None
    assert adherence == pytest.approx(float(np.mean(want_adherence)), rel=1e-12)
    assert kept == pytest.approx(float(np.mean(want_kept)), rel=1e-12)
    assert_close(torch.tensor(want_kept[0]), torch.tensor(1.0, dtype=torch.float64), "network")

    lines = report.splitlines()
    assert len(lines) == 4
    for i, label in enumerate(labels.splitlines()):
        assert lines[i].startswith(f"{i}: ") and lines[i].endswith(f"| {label}")
        assert f"prompt adherence {want_adherence[i]:.2f}" in lines[i]
        assert f"preservation {want_kept[i]:.4f}" in lines[i]
    assert lines[0].startswith(f"0: likeness {results[0].similarity:.4f}")
    assert lines[1].startswith("1: no face")
    assert lines[3].startswith("mean: likeness") and "over 2 of 3 images" in lines[3]
    assert "truncated" not in report

    assert chart.shape == (1, 768, 1024, 3) and chart.dtype == torch.float32
    assert annotated.shape[0] == 3 and annotated.shape[2:] == (640, 3) and annotated.shape[1] > 640
    assert 0.0 <= float(annotated.min()) and float(annotated.max()) <= 1.0

    # A second run on the same handle reuses the tower: nothing wrapped again.
    again = node.evaluate(handle, batch(reference), batch(reference), LONG_PROMPT, "largest")
    assert len(comfy_runtime.managed) == 1 and len(comfy_runtime.loaded) == 2
    assert_close(torch.tensor(again[0]), torch.tensor(1.0, dtype=torch.float64), "layer")
    assert again[2] == 0.0
    report = again[3].splitlines()
    assert "no baseline" in report[1] and "preservation" not in report[0]
    tokens = lib("pulid.tradeoff").prompt_notes([LONG_PROMPT])[0].tokens
    assert tokens > 77 and re.search(rf"truncated: 77 of {tokens} tokens", again[3])


def test_vision_only_eva_file_names_the_file(node, models, comfy_runtime):
    handle = make_handle(models, models.vision_only)
    errors = lib("pulid.errors")
    with pytest.raises(errors.PulidError) as caught:
        node.evaluate(handle, batch(face_photo(1)), batch(face_photo(1)), PROMPT, "largest")
    assert "eva_vision.safetensors" in str(caught.value) and "EVA02_CLIP_L_336_psz14_s6B.pt" in str(caught.value)
    assert handle.clip_text is None and comfy_runtime.loaded == []


def test_bad_input_is_named_before_any_model_runs(node, models, comfy_runtime):
    handle = SimpleNamespace(encoder=None, patcher=None, clip_text=None)  # nothing may be touched
    errors = lib("pulid.errors")
    image = batch(face_photo(1))
    with pytest.raises(errors.PulidError, match="`labels` has 2 lines"):
        node.evaluate(handle, image, image, PROMPT, "largest", None, "a\nb")
    with pytest.raises(errors.PulidError, match="`prompt` is empty"):
        node.evaluate(handle, image, image, "", "largest")
    assert comfy_runtime.managed == [] and comfy_runtime.loaded == []


def test_encode_face_never_loads_the_text_tower():
    """Only Evaluate reads the text tower: the face encoder's loader and Encode Face never name it."""
    import_pack()
    for name in ("nodes.encode", "nodes.loaders", "pulid.face", "pulid.embedding"):
        source = inspect.getsource(sys.modules[f"{PACK}.{name}"])
        assert "clip_text" not in source and "load_clip_text" not in source, name


# ---------------------------------------------------------------- in ComfyUI

def _graph(**optional):
    """Load Image (the rig's face.png) -> Evaluate (node "5") against itself, with these optional inputs."""
    return {
        "3": {"class_type": "PuLIDSDXLFaceEncoderLoader", "inputs": {
            "eva_clip_file": "EVA02_CLIP_L_336_psz14_s6B.pt", "insightface_model": "antelopev2", "provider": "CPU"}},
        "4": {"class_type": "LoadImage", "inputs": {"image": "face.png"}},
        "5": {"class_type": "PuLIDSDXLEvaluate", "inputs": {
            "face_encoder": ["3", 0], "reference": ["4", 0], "images": ["4", 0], "prompt": PROMPT,
            "face": "largest", **optional}},
    }


@pytest.mark.host
def test_node_runs_in_comfyui(comfy):
    """Load Image -> Evaluate against itself (baseline too), outputs shown by the core preview nodes."""
    prompt = _graph(baseline=["4", 0], labels="the photo")
    prompt.update({
        "6": {"class_type": "PreviewAny", "inputs": {"source": ["5", 0]}},
        "7": {"class_type": "PreviewAny", "inputs": {"source": ["5", 1]}},
        "8": {"class_type": "PreviewAny", "inputs": {"source": ["5", 2]}},
        "9": {"class_type": "PreviewAny", "inputs": {"source": ["5", 3]}},
        "10": {"class_type": "PreviewImage", "inputs": {"images": ["5", 4]}},
        "11": {"class_type": "PreviewImage", "inputs": {"images": ["5", 5]}},
    })
    bad = {**prompt, "5": {**prompt["5"], "inputs": {**prompt["5"]["inputs"], "face": "middle"}}}
    assert "5" in comfy.validate(bad)[3]
    outputs = comfy.run(prompt).history_result["outputs"]
    assert_close(torch.tensor(float(outputs["6"]["text"][0])), torch.tensor(1.0, dtype=torch.float64), "layer")
    assert -100.0 <= float(outputs["7"]["text"][0]) <= 100.0
    assert_close(torch.tensor(float(outputs["8"]["text"][0])), torch.tensor(1.0, dtype=torch.float64), "network")
    lines = outputs["9"]["text"][0].splitlines()
    assert lines[0].startswith("0: likeness 1.0000") and lines[0].endswith("| the photo")
    assert len(outputs["10"]["images"]) == 1 and len(outputs["11"]["images"]) == 1


@pytest.mark.host
def test_empty_labels_mismatch_fails_naming_labels(comfy):
    """A label count that does not fit is ComfyUI's execution error naming `labels`, not a numpy message."""
    prompt = _graph(labels="one\ntwo")
    prompt["9"] = {"class_type": "PreviewAny", "inputs": {"source": ["5", 3]}}
    valid = comfy.validate(prompt)
    assert valid[0], valid
    executor = comfy.execute(prompt, valid[2])
    errors = [m[1] for m in executor.status_messages if m[0] == "execution_error"]
    assert errors and errors[0]["node_id"] == "5" and "`labels` has 2 lines" in errors[0]["exception_message"]
