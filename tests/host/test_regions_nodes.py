"""Face Mask, Crop Face and Paste Face through ComfyUI's executor, on pictures composed by testkit.faces.

The results are taken from the graph by a capture node registered in this process for these tests only (an
output node that keeps its inputs), so the pasted pictures are compared as the float tensors the nodes made,
bit for bit, not through an 8-bit PNG.
"""
import logging
import os
import re
import sys

import cv2
import numpy as np
import pytest
import torch

from testkit import capture
from testkit.faces import compose_faces

pytestmark = pytest.mark.host

PICTURES = {  # name -> (height, width, faces as (cx, cy, side))
    "two_faces.png": (640, 640, [(450, 300, 100), (150, 200, 128)]),
    "small_face.png": (1024, 1024, [(600, 420, 100)]),
}


@pytest.fixture(scope="module")
def host(comfy):
    """comfy, with the test pictures in the input folder and the capture node registered."""
    boxes = {}
    for name, (height, width, faces) in PICTURES.items():
        image, boxes[name] = compose_faces(height, width, faces)
        cv2.imwrite(os.path.join(comfy.folder_paths.get_input_directory(), name),
                    cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    cv2.imwrite(os.path.join(comfy.folder_paths.get_input_directory(), "faceless.png"),
                np.full((512, 512, 3), 30, np.uint8))
    comfy.boxes = boxes
    with capture.registered(comfy):
        yield comfy


def loaders():
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "2": {"class_type": "PuLIDSDXLModelLoader", "inputs": {"pulid_file": "pulid_v1.1.safetensors"}},
        "3": {"class_type": "PuLIDSDXLFaceEncoderLoader", "inputs": {
            "eva_clip_file": "EVA02_CLIP_L_336_psz14_s6B.pt", "insightface_model": "antelopev2", "provider": "CPU"}},
    }


def face_mask_prompt(picture, batch=1, face="all", grow=1.3, shape="ellipse", feather=16):
    prompt = {"3": loaders()["3"], "4": {"class_type": "LoadImage", "inputs": {"image": picture}}}
    images = ["4", 0]
    if batch == 2:
        prompt["5"] = {"class_type": "ImageBatch", "inputs": {"image1": ["4", 0], "image2": ["4", 0]}}
        images = ["5", 0]
    prompt["10"] = {"class_type": "PuLIDSDXLFaceMask", "inputs": {
        "face_encoder": ["3", 0], "images": images, "face": face, "grow": grow, "shape": shape, "feather": feather}}
    prompt["20"] = {"class_type": capture.NAME, "inputs": {"tag": "mask", "mask": ["10", 0], "count": ["10", 1]}}
    return prompt


def crop_prompt(picture, working_size=1024, face="largest", skip_faceless=False, **overrides):
    prompt = {"3": loaders()["3"], "4": {"class_type": "LoadImage", "inputs": {"image": picture}}}
    prompt["10"] = {"class_type": "PuLIDSDXLCropFace", "inputs": {
        "face_encoder": ["3", 0], "images": ["4", 0], "face": face, "context": 2.0, "working_size": working_size,
        "grow": 1.3, "shape": "ellipse", "feather": 24, "skip_faceless": skip_faceless, **overrides}}
    prompt["20"] = {"class_type": capture.NAME, "inputs": {
        "tag": "crop", "image": ["10", 0], "mask": ["10", 1], "geometry": ["10", 2]}}
    return prompt


def detail_prompt(picture, working_size=256, denoise=0.5):
    """Crop -> VAE Encode -> SetLatentNoiseMask -> KSampler (model through Apply PuLID) -> VAE Decode -> Paste."""
    prompt = {**loaders(), **crop_prompt(picture, working_size)}
    prompt.update({
        "5": {"class_type": "LoadImage", "inputs": {"image": "face.png"}},
        "6": {"class_type": "PuLIDSDXLEncodeFace", "inputs": {
            "pulid_model": ["2", 0], "face_encoder": ["3", 0], "image": ["5", 0], "face": "largest",
            "multi_image": "auto", "noise": 0.0, "skip_faceless": False}},
        "7": {"class_type": "PuLIDSDXLApply", "inputs": {
            "model": ["1", 0], "pulid_model": ["2", 0], "embeds": ["6", 0], "weight": 0.8, "method": "fidelity",
            "start_at": 0.0, "end_at": 1.0}},
        "8": {"class_type": "CLIPTextEncode", "inputs": {"text": "portrait photo", "clip": ["1", 1]}},
        "9": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
        "11": {"class_type": "VAEEncode", "inputs": {"pixels": ["10", 0], "vae": ["1", 2]}},
        "12": {"class_type": "SetLatentNoiseMask", "inputs": {"samples": ["11", 0], "mask": ["10", 1]}},
        "13": {"class_type": "KSampler", "inputs": {
            "model": ["7", 0], "seed": 1, "steps": 2, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
            "positive": ["8", 0], "negative": ["9", 0], "latent_image": ["12", 0], "denoise": denoise}},
        "14": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["1", 2]}},
        "15": {"class_type": "PuLIDSDXLPasteFace", "inputs": {"images": ["4", 0], "crop": ["14", 0],
                                                              "geometry": ["10", 2]}},
        "21": {"class_type": capture.NAME, "inputs": {"tag": "paste", "image": ["15", 0], "latent": ["13", 0]}},
    })
    return prompt


def run(comfy, prompt, outputs=("20",)):
    capture.CAPTURED.clear()
    comfy.run(prompt, outputs=list(outputs))
    return capture.CAPTURED


def execution_error(comfy, prompt, outputs=("20",)):
    valid = comfy.validate(prompt)
    assert valid[0], (valid[1], valid[3])
    executor = comfy.execute(prompt, list(outputs))
    errors = [m[1] for m in executor.status_messages if m[0] == "execution_error"]
    assert errors, "the prompt ran without an error"
    return errors[0]


def iou(a, b):
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def mask_box(mask):
    rows, cols = np.nonzero(mask)
    return cols.min(), rows.min(), cols.max() + 1 - cols.min(), rows.max() + 1 - rows.min()


class Counter:
    """Counts the calls of one method on its class while the test runs."""

    def __init__(self, monkeypatch, cls, name):
        self.calls = 0
        original = getattr(cls, name)

        def counted(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)
        monkeypatch.setattr(cls, name, counted)


def test_face_mask_runs_one_detection_per_picture_and_no_recognition(host, monkeypatch):
    run(host, face_mask_prompt("two_faces.png", batch=2))  # loads the face encoder (its warm-up detects once)
    from insightface.model_zoo.arcface_onnx import ArcFaceONNX
    from insightface.model_zoo.scrfd import SCRFD
    from facexlib.detection.retinaface import RetinaFace

    eva = sys.modules[host.pack.__name__ + ".pulid.eva_clip"].EvaClipVision
    detect = Counter(monkeypatch, SCRFD, "detect")
    others = [Counter(monkeypatch, ArcFaceONNX, "get"), Counter(monkeypatch, ArcFaceONNX, "get_feat"),
              Counter(monkeypatch, eva, "forward"), Counter(monkeypatch, RetinaFace, "detect_faces")]
    captured = run(host, face_mask_prompt("two_faces.png", batch=2, grow=1.0, shape="box", feather=0))
    assert detect.calls == 2 and [c.calls for c in others] == [0, 0, 0, 0]
    mask = captured["mask"]["mask"]
    assert mask.shape == (2, 640, 640) and captured["mask"]["count"] == 4
    # Detected boxes (grow 1, feather 0) against the drawn squares, each in its own half of the picture.
    for x, y, w, h in host.boxes["two_faces.png"]:
        window = np.zeros((640, 640), bool)
        window[max(0, y - h):y + 2 * h, max(0, x - w):x + 2 * w] = True
        assert iou(mask_box(mask[0].numpy() * window > 0), (x, y, w, h)) >= 0.8
    assert torch.equal(mask[0], mask[1])


def test_crop_face_choices_follow_left_to_right(host):
    drawn = sorted(host.boxes["two_faces.png"], key=lambda b: b[0])
    for number, (x, y, w, h) in enumerate(drawn, 1):
        geometry = run(host, crop_prompt("two_faces.png", 256, face=f"left-to-right #{number}"))["crop"]["geometry"]
        box = geometry[0].box
        assert abs(box.x + box.width / 2 - (x + w / 2)) <= 4 and abs(box.y + box.height / 2 - (y + h / 2)) <= 4


def test_a_100px_face_in_a_1024_picture_is_cropped_to_the_working_size(host):
    captured = run(host, crop_prompt("small_face.png"))["crop"]
    (_, _, w, _), box = host.boxes["small_face.png"][0], captured["geometry"][0].box
    assert captured["image"].shape == (1, 1024, 1024, 3) and captured["mask"].shape == (1, 1024, 1024)
    assert box.width == box.height and abs(box.width - 2 * w) <= 8  # context 2 around a 100 px face
    assert box.as_core() == {"x": box.x, "y": box.y, "width": box.width, "height": box.height}


def test_detail_pass_leaves_every_pixel_outside_the_mask_untouched(host):
    captured = run(host, detail_prompt("small_face.png"), outputs=("21",))["paste"]
    latent = captured["latent"]["samples"]
    assert latent.shape[-2:] == (32, 32)  # working size 256
    geometry = run(host, crop_prompt("small_face.png", 256))["crop"]["geometry"][0]
    original = torch.from_numpy(cv2.cvtColor(cv2.imread(os.path.join(
        host.folder_paths.get_input_directory(), "small_face.png")), cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0)
    pasted = captured["image"][0]
    outside = geometry.mask == 0
    assert torch.equal(pasted[outside], original[outside])
    assert (pasted != original).any(-1)[~outside].any(), "the detail pass changed nothing"


@pytest.mark.parametrize("end_at,warned", [(0.4, True), (0.6, False)])
def test_window_warning_when_end_at_is_below_one_minus_denoise(host, caplog, end_at, warned):
    """At denoise 0.5 the sampler samples the second half of the schedule: an end_at of 0.4 applies the identity
    at no step, and says so; 0.6 reaches the first sampled steps and says nothing. 8 steps: the first sampled step
    is then near 0.5 (with 2 it would be at 0.67, after 0.6 too: the warning follows the steps, not 1 - denoise)."""
    prompt = detail_prompt("small_face.png")
    prompt["7"]["inputs"]["end_at"] = end_at
    prompt["13"]["inputs"]["steps"] = 8
    with caplog.at_level(logging.WARNING):
        run(host, prompt, outputs=("21",))
    found = [r.getMessage() for r in caplog.records if "misses every sampled step" in r.getMessage()]
    assert bool(found) == warned, found
    if warned:
        assert f"end_at {end_at:g}" in found[0], found[0]
        assert re.search(r"Raise end_at above 0\.(5[0-5])\.$", found[0]), found[0]


@pytest.mark.parametrize("case,message", [
    ("faceless", "No face found in picture 0 of `images`"),
    ("mask_size", "`mask` is 64x64 but the pictures are 1024x1024"),
    ("scaled", "it looks like a 0..255 image"),
    ("empty", "`images` is empty"),
    ("batch", "`geometry` was made from a batch of 1 pictures, but `images` holds 2"),
])
def test_bad_input_names_it_and_the_host_stays_usable(host, case, message):
    prompt = crop_prompt("faceless.png" if case == "faceless" else "small_face.png", 256)
    failing, outputs = "10", ("20",)
    if case == "mask_size":
        prompt["30"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}}
        prompt["10"]["inputs"]["mask"] = ["30", 0]
    elif case in ("scaled", "empty"):
        prompt["30"] = ({"class_type": "PulidTestScaleImage", "inputs": {"image": ["4", 0], "factor": 255.0}}
                        if case == "scaled" else
                        {"class_type": "PulidTestEmptyImageBatch", "inputs": {"image": ["4", 0]}})
        prompt["10"]["inputs"]["images"] = ["30", 0]
    elif case == "batch":
        prompt["30"] = {"class_type": "ImageBatch", "inputs": {"image1": ["4", 0], "image2": ["4", 0]}}
        prompt["31"] = {"class_type": "PuLIDSDXLPasteFace", "inputs": {"images": ["30", 0], "crop": ["10", 0],
                                                                      "geometry": ["10", 2]}}
        prompt["32"] = {"class_type": capture.NAME, "inputs": {"tag": "bad", "image": ["31", 0]}}
        failing, outputs = "31", ("32",)
    error = execution_error(host, prompt, outputs)
    assert error["node_id"] == failing and message in error["exception_message"], error["exception_message"]
    # The process stays usable: the next good graph runs, and a faceless picture passes under skip_faceless.
    captured = run(host, crop_prompt("faceless.png", 256, skip_faceless=True))["crop"]
    assert captured["image"].shape == (1, 256, 256, 3) and not captured["mask"].any()
