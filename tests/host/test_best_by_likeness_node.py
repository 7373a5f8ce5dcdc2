"""Best by Likeness and Evaluate's mask through ComfyUI's executor, on generated models and drawn faces.

Best by Likeness must order a batch by the numbers Face Similarity prints for the same batch (faceless last, ties in
batch order, k above the batch keeps all); Evaluate with a mask must measure a face fix (Crop Face, a change of the
crop, Paste Face) as untouched outside the mask: a largest difference of exactly 0 there and a preservation of 1.
"""
import os
import re
import sys

import cv2
import numpy as np
import pytest
import torch

from testkit import capture
from testkit.faces import compose_faces
from testkit.make_face_models import face_photo
from testkit.numerics import assert_close

pytestmark = pytest.mark.host

# name -> picture; `same.png` is `a.png` again: an exact tie.
PICTURES = {"a.png": lambda: face_photo(3, (208, 208)), "none.png": lambda: np.full((640, 640, 3), 30, np.uint8),
            "ref.png": lambda: face_photo(1), "same.png": lambda: face_photo(3, (208, 208)),
            "c.png": lambda: face_photo(4, (432, 432)),
            "fix.png": lambda: compose_faces(640, 640, [(300, 280, 128)])[0]}
BATCH = ["a.png", "none.png", "ref.png", "same.png", "c.png"]


@pytest.fixture(scope="module")
def host(comfy):
    folder = comfy.folder_paths.get_input_directory()
    for name, make in PICTURES.items():
        cv2.imwrite(os.path.join(folder, name), cv2.cvtColor(make(), cv2.COLOR_RGB2BGR))
    with capture.registered(comfy):
        yield comfy


def encoder():
    return {"class_type": "PuLIDSDXLFaceEncoderLoader", "inputs": {
        "eva_clip_file": "EVA02_CLIP_L_336_psz14_s6B.pt", "insightface_model": "antelopev2", "provider": "CPU"}}


def best_prompt(k):
    """The batch, scored by Face Similarity (report -> node 31) and picked by Best by Likeness (-> 40, 41, 42)."""
    prompt = {"3": encoder(), "9": {"class_type": "LoadImage", "inputs": {"image": "ref.png"}}}
    previous = None
    for i, name in enumerate(BATCH):
        prompt[f"1{i}"] = {"class_type": "LoadImage", "inputs": {"image": name}}
        if previous is None:
            previous = [f"1{i}", 0]
        else:
            prompt[f"2{i}"] = {"class_type": "ImageBatch", "inputs": {"image1": previous, "image2": [f"1{i}", 0]}}
            previous = [f"2{i}", 0]
    prompt["30"] = {"class_type": "PuLIDSDXLFaceSimilarity", "inputs": {
        "face_encoder": ["3", 0], "reference": ["9", 0], "images": previous, "face": "largest"}}
    prompt["31"] = {"class_type": "PreviewAny", "inputs": {"source": ["30", 1]}}
    prompt["35"] = {"class_type": "PuLIDSDXLBestByLikeness", "inputs": {
        "face_encoder": ["3", 0], "images": previous, "reference": ["9", 0], "k": k, "face": "largest"}}
    prompt["40"] = {"class_type": capture.NAME, "inputs": {"tag": "best", "image": ["35", 0]}}
    prompt["41"] = {"class_type": "PreviewAny", "inputs": {"source": ["35", 1]}}
    prompt["42"] = {"class_type": "PreviewAny", "inputs": {"source": ["35", 2]}}
    return prompt


def run(comfy, prompt):
    capture.CAPTURED.clear()
    return comfy.run(prompt).history_result["outputs"]


def full_scores(comfy, batch):
    """Each picture's likeness at full precision, from the pack's library on the host's model files (the printed
    4 decimals tie on the synthetic ArcFace)."""
    face = sys.modules[comfy.pack.__name__ + ".pulid.face"]
    similarity = sys.modules[comfy.pack.__name__ + ".pulid.similarity"]
    encoder = face.FaceEncoder(str(comfy.models / "clip_vision" / "EVA02_CLIP_L_336_psz14_s6B.pt"),
                               str(comfy.models / "insightface" / "models" / "antelopev2"),
                               str(comfy.models / "facexlib"), providers="CPU")
    reference = PICTURES["ref.png"]().astype(np.float32) / 255.0
    return similarity.face_similarity(encoder, [reference], list(batch))[1]


@pytest.mark.parametrize("k", [2, 5, 9])
def test_best_orders_by_face_similaritys_numbers(host, k):
    outputs = run(host, best_prompt(k))
    printed = dict(line.split(": ") for line in outputs["31"]["text"][0].splitlines()[:-1])
    assert printed["1"] == "no face" and printed["0"] == printed["3"]  # the faceless picture and the tie
    batch = torch.from_numpy(np.stack([PICTURES[name]() for name in BATCH]).astype(np.float32) / 255.0)
    full = full_scores(host, batch)
    assert [f"{r.index}: {printed[str(r.index)]}" for r in full] == outputs["31"]["text"][0].splitlines()[:-1]
    assert [printed[str(r.index)] for r in full if r.similarity is not None] == [
        f"{r.similarity:.4f}" for r in full if r.similarity is not None]  # Face Similarity prints these numbers
    assert full[0].similarity == full[3].similarity  # the same picture twice: an exact tie
    scored = sorted((r for r in full if r.similarity is not None), key=lambda r: -r.similarity)  # stable
    order = ([r.index for r in scored] + [1])[:k]
    assert outputs["42"]["text"][0] == ",".join(map(str, order))
    lines = outputs["41"]["text"][0].splitlines()
    assert lines[:-1] == [f"{i}: {printed[str(i)]}" for i in order]
    assert lines[-1] == f"kept {len(order)} of 5 images, highest likeness first"
    assert order[0] == 2  # the reference itself
    if k >= 5:
        assert order.index(0) < order.index(3) and order[4] == 1  # the tie in batch order, the faceless last
    assert torch.equal(capture.CAPTURED["best"]["image"], batch[order])


def fix_prompt(baseline=True, mask_size=None):
    """A face fix of fix.png (Crop Face, the crop halved, Paste Face) evaluated against the picture before it,
    with Face Mask's mask of the same face (the crop's own grow, shape and feather)."""
    prompt = {
        "3": encoder(),
        "4": {"class_type": "LoadImage", "inputs": {"image": "fix.png"}},
        "5": {"class_type": "PuLIDSDXLCropFace", "inputs": {
            "face_encoder": ["3", 0], "images": ["4", 0], "face": "largest", "context": 2.0, "working_size": 256,
            "grow": 1.3, "shape": "ellipse", "feather": 24, "skip_faceless": False}},
        "6": {"class_type": "ImageScaleBy", "inputs": {"image": ["5", 0], "upscale_method": "bilinear",
                                                       "scale_by": 0.5}},
        "7": {"class_type": "PuLIDSDXLPasteFace", "inputs": {"images": ["4", 0], "crop": ["6", 0],
                                                             "geometry": ["5", 2]}},
        "8": {"class_type": "PuLIDSDXLFaceMask", "inputs": {
            "face_encoder": ["3", 0], "images": ["4", 0], "face": "largest", "grow": 1.3, "shape": "ellipse",
            "feather": 24}},
        "10": {"class_type": "PuLIDSDXLEvaluate", "inputs": {
            "face_encoder": ["3", 0], "reference": ["4", 0], "images": ["7", 0], "prompt": "portrait photo",
            "face": "largest", "labels": "fixed", "mask": ["8", 0]}},
        "11": {"class_type": "PreviewAny", "inputs": {"source": ["10", 2]}},
        "12": {"class_type": "PreviewAny", "inputs": {"source": ["10", 3]}},
        "13": {"class_type": capture.NAME, "inputs": {"tag": "fixed", "image": ["7", 0]}},
    }
    if baseline:
        prompt["10"]["inputs"]["baseline"] = ["4", 0]
    if mask_size:
        prompt["9"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": mask_size, "height": mask_size}}
        prompt["10"]["inputs"]["mask"] = ["9", 0]
    return prompt


def test_evaluate_with_a_mask_measures_a_face_fix_as_untouched_outside(host):
    outputs = run(host, fix_prompt())
    original = torch.from_numpy(PICTURES["fix.png"]().astype(np.float32) / 255.0)
    assert (capture.CAPTURED["fixed"]["image"][0] != original).any(), "the fix changed nothing"
    assert_close(torch.tensor(float(outputs["11"]["text"][0])), torch.tensor(1.0, dtype=torch.float64), "network")
    line = outputs["12"]["text"][0].splitlines()[0]
    assert re.search(r"\| outside mask max diff 0\.0000 \| fixed$", line), line
    assert line.startswith("0: likeness "), line  # the face centred in the mask is scored
    # Without the mask the same pair is not untouched: the measure can fail.
    plain = fix_prompt()
    del plain["10"]["inputs"]["mask"]
    outputs = run(host, plain)
    assert float(outputs["11"]["text"][0]) < 1.0 - 1e-4
    assert "outside mask" not in outputs["12"]["text"][0]


def execution_error(comfy, prompt):
    valid = comfy.validate(prompt)
    assert valid[0], (valid[1], valid[3])
    executor = comfy.execute(prompt, valid[2])
    errors = [m[1] for m in executor.status_messages if m[0] == "execution_error"]
    assert errors, "the prompt ran without an error"
    return errors[0]


@pytest.mark.parametrize("case,node,message", [
    ("mask_size", "10", "`mask` is 64x64 but the pictures are 640x640"),
    ("empty_reference", "35", "`reference` is empty"),
    ("scaled", "35", "`images` has pixel values up to 230: it looks like a 0..255 image"),
])
def test_bad_input_names_it_and_the_host_stays_usable(host, case, node, message):
    if case == "mask_size":
        prompt = fix_prompt(mask_size=64)
    else:
        prompt = best_prompt(1)
        fault = ("PulidTestEmptyImageBatch", "reference") if case == "empty_reference" else (
            "PulidTestScaleImage", "images")
        source = prompt["35"]["inputs"][fault[1]]
        prompt["50"] = {"class_type": fault[0], "inputs": {"image": source,
                                                          **({"factor": 255.0} if case == "scaled" else {})}}
        prompt["35"]["inputs"][fault[1]] = ["50", 0]
    error = execution_error(host, prompt)
    assert error["node_id"] == node and message in error["exception_message"], error["exception_message"]
    assert run(host, best_prompt(1))["42"]["text"][0] == "2"  # the next good graph runs


def test_k_zero_is_refused_naming_k(host):
    """ComfyUI's validation refuses it (the widget's min) and names `k`; the rest of the graph stays runnable."""
    valid = host.validate(best_prompt(0))
    assert "35" in valid[3] and "k" in str(valid[3]["35"]), valid[3]
    assert run(host, best_prompt(1))["42"]["text"][0] == "2"
