"""The group-faces graph (docs/internals.md#group-faces) through the executor: reference k goes to face k.

The rig's random SDXL draws no faces, so the first pass's picture is replaced by a group picture composed with
testkit.faces (the rest of the graph runs as it is). Pixels cannot show which identity went
where (convolutions spread every change), so the assignment is checked on the patched model itself: at every
attn2 site, the k-th chained IdentityAttention holds reference k's embeddings and face k's mask.
"""
import copy
import json
import os
from pathlib import Path

import cv2
import pytest
import torch

from testkit import capture
from testkit.faces import compose_faces

pytestmark = pytest.mark.host

WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "api" / "pulid_group_faces.json"
"""The shipped group-faces template (two people; docs/internals.md#group-faces), as its API copy."""
PICTURES = {  # name -> faces as (cx, cy, side) on a 768x448 picture (a 96x56 latent: quick on the rig)
    "group_two.png": [(648, 224, 100), (120, 224, 100)],  # drawn right to left: the order is by position
    "group_three.png": [(120, 224, 100), (384, 224, 100), (648, 224, 100)],
    "group_one.png": [(384, 224, 100)],
}
PHOTOS = ("face.png", "face2.png")  # the workflow's Load Image nodes, left to right


@pytest.fixture(scope="module")
def host(comfy):
    boxes = {}
    for name, faces in PICTURES.items():
        image, drawn = compose_faces(448, 768, faces)
        boxes[name] = sorted(drawn, key=lambda box: box[0])  # left to right
        cv2.imwrite(os.path.join(comfy.folder_paths.get_input_directory(), name),
                    cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    comfy.boxes = boxes
    with capture.registered(comfy):
        yield comfy


def nodes_of(prompt, class_type):
    return sorted((k for k, v in prompt.items() if v["class_type"] == class_type), key=int)


def group_prompt(picture):
    """The shipped workflow, its first pass replaced by `picture` (its pixels where the decoded first pass went, its
    VAE encoding where the first pass's latent went), 2 steps, plus the capture nodes: the chained model, each
    Assign Face's outputs, and per photo an Encode Face and a Face Mask of its own."""
    prompt = json.loads(WORKFLOW.read_text(encoding="utf-8"))
    assert prompt["14"]["inputs"]["samples"] == ["13", 0]  # node 14 decodes the first pass (node 13)
    prompt["40"] = {"class_type": "LoadImage", "inputs": {"image": picture}}
    prompt["41"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["40", 0], "vae": prompt["14"]["inputs"]["vae"]}}
    for node in prompt.values():
        for name, value in node["inputs"].items():
            if value in (["14", 0], ["13", 0]):
                node["inputs"][name] = ["40", 0] if value == ["14", 0] else ["41", 0]
    for key in nodes_of(prompt, "KSampler"):
        prompt[key]["inputs"]["steps"] = 2
    for key in ("13", "14", "12"):  # the first pass is replaced by the picture
        del prompt[key]
    assign = nodes_of(prompt, "PuLIDSDXLAssignFace")
    applies = chained_applies(prompt)
    prompt["50"] = {"class_type": capture.NAME, "inputs": {"tag": "model", "model": [applies[-1], 0]}}
    for person, node in enumerate(assign, 1):
        loader = next(k for k in nodes_of(prompt, "LoadImage") if prompt[k]["inputs"]["image"] == PHOTOS[person - 1])
        prompt[f"6{person}"] = {"class_type": "PuLIDSDXLEncodeFace", "inputs": {
            **prompt[nodes_of(prompt, "PuLIDSDXLEncodeFace")[0]]["inputs"], "image": [loader, 0]}}
        prompt[f"7{person}"] = {"class_type": "PuLIDSDXLFaceMask", "inputs": {
            "face_encoder": prompt[node]["inputs"]["face_encoder"], "images": ["40", 0],
            "face": f"left-to-right #{person}", "grow": prompt[node]["inputs"]["grow"],
            "shape": prompt[node]["inputs"]["shape"], "feather": prompt[node]["inputs"]["feather"]}}
        prompt[f"8{person}"] = {"class_type": capture.NAME, "inputs": {
            "tag": f"person {person}", "image": [node, 0], "mask": [node, 1], "count": [node, 2],
            "embeds": [f"6{person}", 0]}}
        prompt[f"9{person}"] = {"class_type": capture.NAME, "inputs": {
            "tag": f"face mask {person}", "mask": [f"7{person}", 0], "image": [loader, 0]}}
    return prompt


def chained_applies(prompt):
    """The Apply PuLID nodes in chain order: each one's model comes from the one before."""
    applies = nodes_of(prompt, "PuLIDSDXLApply")
    order = [next(k for k in applies if prompt[k]["inputs"]["model"][0] not in applies)]
    while len(order) < len(applies):
        order.append(next(k for k in applies if prompt[k]["inputs"]["model"] == [order[-1], 0]))
    return order


def outputs_of(prompt, sample=False):
    """The capture nodes, and with `sample` the Save Image too (the second pass runs only then)."""
    kinds = (capture.NAME, "SaveImage") if sample else (capture.NAME,)
    return [k for k, v in prompt.items() if v["class_type"] in kinds]


def run(host, prompt, sample=False):
    capture.CAPTURED.clear()
    host.run(prompt, outputs=outputs_of(prompt, sample))
    return dict(capture.CAPTURED)


def attn2(model):
    return model.model_options["transformer_options"]["patches_replace"]["attn2"]


def test_the_kth_apply_holds_reference_k_and_face_k(host):
    prompt = group_prompt("group_two.png")
    applies = chained_applies(prompt)
    # The shipped graph pairs them by wiring: Apply k's embeds from the Encode Face of photo k (the k-th image of
    # Assign Face's `references`), its attn_mask from the mask of Assign Face k, set to person k.
    for person, apply in enumerate(applies, 1):
        encode = prompt[apply]["inputs"]["embeds"][0]
        photo = prompt[encode]["inputs"]["image"][0]
        assert prompt[photo]["class_type"] == "LoadImage" and prompt[photo]["inputs"]["image"] == PHOTOS[person - 1]
        assign = prompt[apply]["inputs"]["attn_mask"][0]
        assert prompt[apply]["inputs"]["attn_mask"] == [assign, 1]
        assert prompt[assign]["class_type"] == "PuLIDSDXLAssignFace" and prompt[assign]["inputs"]["person"] == person
    captured = run(host, prompt, sample=True)  # the whole workflow, second pass and Save Image included
    replaces = attn2(captured["model"]["model"])
    assert len(replaces) == 70
    for person in (1, 2):
        kept, alone = captured[f"person {person}"], captured[f"face mask {person}"]
        # Reference k is photo k, pixel for pixel.
        assert torch.equal(kept["image"], alone["image"])
        # Face k's mask: the k-th drawn face from the left, and what Face Mask's "left-to-right #k" gives.
        assert torch.equal(kept["mask"], alone["mask"]) and kept["count"] == 2
        x, y, w, h = host.boxes["group_two.png"][person - 1]
        assert kept["mask"][0, y + h // 2, x + w // 2] == 1.0
        other = host.boxes["group_two.png"][2 - person]
        assert kept["mask"][0, other[1]:other[1] + other[3], other[0]:other[0] + other[2]].max() == 0
        for key, replace in replaces.items():
            site = replace.chain()[person - 1]
            assert len(replace.chain()) == 2, key
            # The embeddings of reference k (encoded alone from photo k, bit for bit) and the mask of face k.
            assert torch.equal(site.kv.embeds.cond, kept["embeds"].cond), key
            assert torch.equal(site.mask.mask, kept["mask"].cpu()), key
    # Two different photos: the check above could tell them apart.
    assert not torch.equal(captured["person 1"]["embeds"].cond, captured["person 2"]["embeds"].cond)


def test_more_faces_than_references_leaves_the_extra_face_out_of_every_mask(host):
    captured = run(host, group_prompt("group_three.png"))
    assert captured["person 1"]["count"] == 3
    x, y, w, h = host.boxes["group_three.png"][2]  # the rightmost face: no reference for it
    for replace in attn2(captured["model"]["model"]).values():
        masks = [site.mask.mask for site in replace.chain()]
        assert len(masks) == 2
        assert all(mask[:, y:y + h, x:x + w].max() == 0 for mask in masks)
        left, middle = host.boxes["group_three.png"][:2]
        for mask, (bx, by, bw, bh) in zip(masks, (left, middle)):
            assert mask[0, by + bh // 2, bx + bw // 2] == 1.0


def bad(prompt, case):
    """`prompt` with one input of the first Assign Face made wrong; returns that node's id."""
    prompt = copy.deepcopy(prompt)
    node = nodes_of(prompt, "PuLIDSDXLAssignFace")[0]
    inputs = prompt[node]["inputs"]
    if case == "empty references":
        prompt["30"] = {"class_type": "PulidTestEmptyImageBatch", "inputs": {"image": inputs["references"]}}
        inputs["references"] = ["30", 0]
    elif case == "0..255 picture":
        prompt["30"] = {"class_type": "PulidTestScaleImage", "inputs": {"image": inputs["images"], "factor": 255.0}}
        inputs["images"] = ["30", 0]
    elif case == "0..255 references":
        prompt["30"] = {"class_type": "PulidTestScaleImage", "inputs": {"image": inputs["references"],
                                                                       "factor": 255.0}}
        inputs["references"] = ["30", 0]
    elif case == "mask size":
        prompt["30"] = {"class_type": "SolidMask", "inputs": {"value": 1.0, "width": 64, "height": 64}}
        inputs["mask"] = ["30", 0]
    elif case == "person":
        inputs["person"] = 3
    return prompt, node


@pytest.mark.parametrize("case,message", [
    ("fewer faces", "Picture 0 of `images` shows 1 face(s) but `references` holds 2 photo(s)"),
    ("empty references", "`references` is empty"),
    ("0..255 picture", "`images` has pixel values up to"),
    ("0..255 references", "`references` has pixel values up to"),
    ("mask size", "`mask` is 64x64 but the pictures are 768x448"),
    ("person", "`person` is 3 but `references` holds 2 photo(s)"),
])
def test_bad_input_names_it_and_the_host_stays_usable(host, case, message):
    prompt, node = bad(group_prompt("group_one.png" if case == "fewer faces" else "group_two.png"), case)
    valid = host.validate(prompt)
    assert valid[0], (valid[1], valid[3])
    executor = host.execute(prompt, ["81", "82"])  # the two Assign Face nodes' captures
    errors = [m[1] for m in executor.status_messages if m[0] == "execution_error"]
    assert errors, "the prompt ran without an error"
    failed = errors[0]["node_id"]
    assert message in errors[0]["exception_message"], errors[0]["exception_message"]
    assert prompt[failed]["class_type"] == "PuLIDSDXLAssignFace" and (case == "fewer faces" or failed == node)
    # The process stays usable: the good graph runs next.
    captured = run(host, group_prompt("group_two.png"))
    assert len(attn2(captured["model"]["model"])) == 70
