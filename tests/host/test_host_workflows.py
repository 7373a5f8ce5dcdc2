"""Every API workflow in workflows/api/ runs in a real ComfyUI (COMFYUI_PATH) on the CPU.

Sizes and step counts are cut down for speed (72x56 px: a 9x7 latent, so the token grids are odd);
node ids, model names and every PuLID setting stay as shipped. The sampled latent is saved with
ComfyUI's SaveLatent and compared bit for bit: PuLID must change it, weight 0 must not.

The tests run in file order and share results: ComfyUI's cache keeps the loaded checkpoint and the
encoded face between consecutive prompts that use them, which keeps the CPU time down.
"""
import copy
import glob
import importlib
import json
import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from testkit.numerics import assert_agree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API = os.path.join(ROOT, "workflows", "api")
LATENT_NODE = "900"
pytestmark = pytest.mark.host


def workflow(name):
    with open(os.path.join(API, name + ".json"), encoding="utf-8") as f:
        return json.load(f)


def nodes_of(prompt, class_type):
    return [k for k, v in prompt.items() if v["class_type"] == class_type]


def shrink(prompt, tag, steps=2):
    """Small latent and few steps; a SaveLatent after the sampler so the result can be compared."""
    prompt = copy.deepcopy(prompt)
    for key in nodes_of(prompt, "EmptyLatentImage"):
        prompt[key]["inputs"].update(width=72, height=56)
    (sampler,) = nodes_of(prompt, "KSampler")
    prompt[sampler]["inputs"]["steps"] = min(prompt[sampler]["inputs"]["steps"], steps)
    prompt[LATENT_NODE] = {"class_type": "SaveLatent",
                           "inputs": {"samples": [sampler, 0], "filename_prefix": f"latents/{tag}"}}
    return prompt


def run(comfy, prompt, tag, steps=2):
    """The sampled latent of `prompt` (the image decode and previews are not run)."""
    comfy.run(shrink(prompt, tag, steps), outputs=[LATENT_NODE])
    files = sorted(glob.glob(str(comfy.output / "latents" / f"{tag}_*.latent")))
    assert files, f"no latent saved for {tag}"
    return load_file(files[-1])["latent_tensor"]


def unpatched(prompt):
    """The same graph with the sampler fed straight from the checkpoint loader."""
    prompt = copy.deepcopy(prompt)
    (ckpt,) = nodes_of(prompt, "CheckpointLoaderSimple")
    for key in nodes_of(prompt, "KSampler"):
        prompt[key]["inputs"]["model"] = [ckpt, 0]
    return prompt


def with_weight(prompt, weight):
    prompt = copy.deepcopy(prompt)
    for key in nodes_of(prompt, "PuLIDSDXLApply") + nodes_of(prompt, "PuLIDSDXLApplyAdvanced"):
        prompt[key]["inputs"]["weight"] = weight
    return prompt


@pytest.fixture(scope="module")
def results():
    return {}


def test_pack_registers_nodes_and_folders(comfy):
    for node_id in ("PuLIDSDXLModelLoader", "PuLIDSDXLFaceEncoderLoader", "PuLIDSDXLEncodeFace", "PuLIDSDXLApply",
                    "PuLIDSDXLApplyAdvanced", "PuLIDSDXLSaveEmbeds", "PuLIDSDXLLoadEmbeds", "PuLIDSDXLFaceSimilarity",
                    "PuLIDSDXLEvaluate"):
        assert node_id in comfy.nodes.NODE_CLASS_MAPPINGS
    paths, extensions = comfy.folder_paths.folder_names_and_paths["pulid"]
    assert {".bin", ".safetensors", ".pt", ".pth"} <= set(extensions)
    assert len(paths) >= 2  # the extra path registered first is kept, the default is added
    assert "pulid_v1.1.safetensors" in comfy.folder_paths.get_filename_list("pulid")


@pytest.mark.parametrize("node,name,value", [
    ("PuLIDSDXLApply", "weight", 5.5), ("PuLIDSDXLApply", "method", "strong"), ("PuLIDSDXLApply", "end_at", 1.5),
    ("PuLIDSDXLEncodeFace", "noise", -0.1), ("PuLIDSDXLEncodeFace", "face", "middle")])
def test_validation_rejects_bad_widgets(comfy, node, name, value):
    prompt = workflow("pulid_basic")
    (key,) = nodes_of(prompt, node)
    prompt[key]["inputs"][name] = value
    valid = comfy.validate(prompt)
    # The preview output does not depend on Apply, so the prompt as a whole may stay runnable.
    assert key in valid[3] and nodes_of(prompt, "SaveImage")[0] not in valid[2]


def test_clone_of_patched_model_shares_tensors(comfy):
    """ModelPatcher.clone deep-copies model_options on both hosts: the patches must not copy tensors."""
    model_patcher = importlib.import_module("comfy.model_patcher")
    attn2 = comfy.pack.nodes.attn2
    g = torch.Generator().manual_seed(0)
    embeds = comfy.pack.pulid.embedding.IDEmbedding(torch.randn(1, 4, 8, generator=g), torch.zeros(1, 4, 8), "v1.1")
    pulid = SimpleNamespace(kv_weights=[(torch.randn(640, 8, generator=g), torch.randn(640, 8, generator=g))])
    kv = attn2.IDKeyValues(embeds, pulid, 0, 2)
    patch = attn2.IdentityAttention(kv, 1.0, "off", attn2.SigmaWindow(1e9, 0.0),
                                   comfy.pack.nodes.patch.attention_function())
    model = model_patcher.ModelPatcher(torch.nn.Linear(2, 2), torch.device("cpu"), torch.device("cpu"))
    model.set_model_attn2_replace(patch, "input", 4, 0)
    clone = model.clone()
    copied = clone.model_options["transformer_options"]["patches_replace"]["attn2"][("input", 4, 0)]
    assert copied.kv is kv and copied.kv.embeds is embeds



def test_missing_files_name_the_folder_and_the_fix(comfy):
    nodes, errors = comfy.pack.nodes, comfy.pack.pulid.errors
    with pytest.raises(errors.ModelFileError) as caught:
        nodes.PuLIDSDXLModelLoader().load("pulid_v1.bin")
    message = str(caught.value)
    assert "pulid_v1.bin" in message and "fetch-models" in message
    assert all(p in message for p in comfy.folder_paths.get_folder_paths("pulid"))
    with pytest.raises(errors.ModelFileError, match="buffalo_l.*fetch-models"):
        nodes.folders.insightface_dir("buffalo_l")
    assert nodes.folders.insightface_dir("antelopev2").endswith(os.path.join("antelopev2", "antelopev2"))

def test_ours_load_beside_the_other_pulid_packs_ids(comfy):
    """The stand-in pack (tests/host/custom_nodes/pulid_test_clashing_pack) loaded first registered every id
    the other PuLID packs use; ours are all there too, as our classes (the workflows' tests run them)."""
    from testkit.other_pulid_packs import PACKS

    theirs = {node_id for pack in PACKS.values() for node_id in pack["ids"]}
    assert theirs <= set(comfy.nodes.NODE_CLASS_MAPPINGS)
    for node_id, cls in comfy.pack.NODE_CLASS_MAPPINGS.items():
        assert comfy.nodes.NODE_CLASS_MAPPINGS[node_id] is cls


def _protocol_patch(prompt, model, scale=0.5):
    """A node of the protocol stand-in fed by `model`; returns its id."""
    key = str(max(int(k) for k in prompt) + 1)
    prompt[key] = {"class_type": "PuLIDTestAttn2Protocol", "inputs": {"model": model, "scale": scale}}
    return key


def test_composes_with_attn2_protocol_packs_in_either_order(comfy):
    """IPAdapter_plus-style packs .add() onto a replace they find: PuLID -> them and them -> PuLID both keep
    both terms. With ortho off and their term independent of the output, both orders are the same sum."""
    base = workflow("pulid_basic")
    (apply,) = nodes_of(base, "PuLIDSDXLApply")
    (ckpt,) = nodes_of(base, "CheckpointLoaderSimple")
    (sampler,) = nodes_of(base, "KSampler")
    base[apply]["inputs"]["method"] = "neutral"
    pulid_only = run(comfy, base, "protocol_pulid")
    theirs = unpatched(base)
    theirs[sampler]["inputs"]["model"] = [_protocol_patch(theirs, [ckpt, 0]), 0]
    theirs_only = run(comfy, theirs, "protocol_theirs")
    after = copy.deepcopy(base)  # PuLID, then their node calls .add() on our replace
    after[sampler]["inputs"]["model"] = [_protocol_patch(after, [apply, 0]), 0]
    before = copy.deepcopy(base)  # their replace first, PuLID chains over it
    before[apply]["inputs"]["model"] = [_protocol_patch(before, [ckpt, 0]), 0]
    a, b = run(comfy, after, "protocol_after"), run(comfy, before, "protocol_before")
    pulid_effect, their_effect = (a - theirs_only).abs().max(), (a - pulid_only).abs().max()
    assert pulid_effect > 1e-3 and their_effect > 1e-3  # both terms are there
    # The same sum in another order: equal up to float rounding, which the sampler amplifies a little.
    assert (a - b).abs().max() < 0.05 * min(pulid_effect, their_effect)


@pytest.mark.parametrize("sampling", [
    {"class_type": "ModelSamplingDiscrete", "inputs": {"sampling": "lcm", "zsnr": False}},
    {"class_type": "ModelSamplingContinuousEDM", "inputs": {"sampling": "eps", "sigma_max": 120.0,
                                                            "sigma_min": 0.002}}], ids=["discrete", "edm"])
def test_window_follows_the_sampled_models_schedule_whatever_the_node_order(comfy, sampling):
    """start_at/end_at are fractions of the schedule of the model that is sampled: a ModelSampling* node
    before or after Apply PuLID gives the same image."""
    base = workflow("pulid_basic")
    (apply,) = nodes_of(base, "PuLIDSDXLApply")
    (ckpt,) = nodes_of(base, "CheckpointLoaderSimple")
    (sampler,) = nodes_of(base, "KSampler")
    # karras, 4 steps: the third step's sigma is 0.62 with the EDM schedule, between end_at 0.6's sigma there
    # (0.16) and in the checkpoint's own schedule (1.16): a window taken from the wrong model drops that step.
    base[apply]["inputs"].update(start_at=0.0, end_at=0.6)
    results = []
    for order in ("before", "after"):
        prompt = copy.deepcopy(base)
        prompt["950"] = copy.deepcopy(sampling)
        if order == "before":
            prompt["950"]["inputs"]["model"] = [ckpt, 0]
            prompt[apply]["inputs"]["model"] = ["950", 0]
        else:
            prompt["950"]["inputs"]["model"] = [apply, 0]
            prompt[sampler]["inputs"]["model"] = ["950", 0]
        results.append(run(comfy, prompt, f"window_{sampling['class_type']}_{order}", steps=4))
    assert_agree(results[0], results[1], "network")


def test_migrated_cubiq_prompt_validates_and_runs(comfy):
    """`pulid migrate` on a cubiq API prompt: ComfyUI accepts the result, and it samples (on the CPU provider)."""
    from testkit import cubiq_workflows
    from workflow_files.migrate import migrate

    prompt = migrate(cubiq_workflows.api()).workflow
    valid = comfy.validate(prompt)
    assert valid[0], (valid[1], valid[3])
    prompt["17"]["inputs"]["provider"] = "CPU"
    run(comfy, prompt, "migrated_cubiq")


@pytest.mark.parametrize("method", ["fidelity", "style"])
def test_zeroed_negative_prompt_with_ortho_stays_finite(comfy, method):
    """ConditioningZeroOut on the negative (Lightning-style graphs) at cfg > 1: the uncond rows' text attention
    is all zero; ortho v1/v2 must not divide 0 by 0 there."""
    prompt = workflow("pulid_basic")
    (apply,) = nodes_of(prompt, "PuLIDSDXLApply")
    (sampler,) = nodes_of(prompt, "KSampler")
    prompt[apply]["inputs"]["method"] = method
    negative = prompt[sampler]["inputs"]["negative"]
    prompt["960"] = {"class_type": "ConditioningZeroOut", "inputs": {"conditioning": negative}}
    prompt[sampler]["inputs"].update(negative=["960", 0], cfg=4.0)
    latent = run(comfy, prompt, f"zero_negative_{method}")
    assert torch.isfinite(latent).all()


@pytest.mark.parametrize("name", ["weight", "start_at", "end_at"])
def test_nan_number_fails_at_apply_naming_it(comfy, name):
    """NaN passes ComfyUI's min/max check on some hosts: Apply must name it instead of sampling NaN or crashing."""
    prompt = shrink(workflow("pulid_basic"), f"nan_{name}")
    (apply,) = nodes_of(prompt, "PuLIDSDXLApply")
    prompt[apply]["inputs"][name] = float("nan")
    valid = comfy.validate(prompt)
    if not valid[0]:  # a host that already rejects NaN at validation is fine too, if it names the input
        assert name in json.dumps(valid[3].get(apply, {})), valid
        return
    error = execution_error(comfy, prompt, [LATENT_NODE])
    assert error["node_id"] == apply and f"{name} is nan" in error["exception_message"]


def execution_error(comfy, prompt, outputs):
    """The execution_error event of a prompt that must fail at run time (after passing validation)."""
    valid = comfy.validate(prompt)
    assert valid[0], (valid[1], valid[3])
    executor = comfy.execute(prompt, outputs)
    errors = [m[1] for m in executor.status_messages if m[0] == "execution_error"]
    assert errors, "the prompt ran without an error"
    return errors[0]


def test_save_embeds(comfy):
    comfy.run(workflow("pulid_save_embeds"))  # every output: the preview of the aligned/masked face too
    # In a folder of its own: other PuLID packs list models/pulid recursively as model files.
    assert "face_00001.safetensors" in comfy.folder_paths.get_filename_list("pulid_sdxl_embeds")
    assert not any("face_00001" in f for f in comfy.folder_paths.get_filename_list("pulid"))


def test_embeds_saved_by_the_first_release_still_load(comfy):
    """Files in models/pulid/embeds (where 0.1 saved them) are listed and loaded, and never offered as models."""
    nodes = comfy.pack.nodes
    saved = Path(comfy.folder_paths.get_folder_paths("pulid_sdxl_embeds")[0])
    if not list(saved.glob("*.safetensors")):
        comfy.run(workflow("pulid_save_embeds"))
    legacy = comfy.models / "pulid" / "embeds"
    legacy.mkdir(exist_ok=True)
    shutil.copyfile(next(saved.glob("*.safetensors")), legacy / "old_face.safetensors")
    try:
        assert "old_face.safetensors" in nodes.folders.embeds_files()
        assert "embeds/old_face.safetensors" not in nodes.folders.pulid_files()
        (loaded,) = nodes.PuLIDSDXLLoadEmbeds().load("old_face.safetensors")
        assert loaded.cond.shape[-1] == 2048
    finally:
        (legacy / "old_face.safetensors").unlink()


def test_basic_changes_the_result_and_weight_zero_does_not(comfy, results):
    prompt = workflow("pulid_basic")
    results["basic"] = run(comfy, prompt, "basic_pulid")
    zero = run(comfy, with_weight(prompt, 0.0), "basic_zero")
    plain = run(comfy, unpatched(prompt), "basic_plain")
    assert torch.isfinite(results["basic"]).all()
    assert (results["basic"] - plain).abs().max() > 1e-4
    assert torch.equal(zero, plain)


def test_reused_embeds_drive_the_model_like_fresh_ones(comfy, results):
    if "basic" not in results:
        pytest.skip("needs test_basic_changes_the_result_and_weight_zero_does_not")
    # Same face, model, prompt and settings as pulid_basic: the saved tokens are the encoded ones.
    assert torch.equal(run(comfy, workflow("pulid_reuse_embeds"), "reuse"), results["basic"])


@pytest.mark.parametrize("name", ["pulid_two_identities", "pulid_advanced", "pulid_lightning"])
def test_workflow_runs(comfy, name):
    latent = run(comfy, workflow(name), name)
    assert torch.isfinite(latent).all() and latent.shape[-2:] == (7, 9)


def test_best_of_batch(comfy):
    """Four seeds drawn, the likest one kept and saved; the scores preview ranks all four (Best by Likeness's
    order and numbers are its own tests'); its images are the decoded batch's size."""
    prompt = workflow("pulid_best_of_batch")
    (latent,) = nodes_of(prompt, "EmptyLatentImage")
    (best,) = nodes_of(prompt, "PuLIDSDXLBestByLikeness")
    (scores,) = nodes_of(prompt, "PreviewAny")
    (saved,) = nodes_of(prompt, "SaveImage")
    assert prompt[latent]["inputs"]["batch_size"] == 4 and prompt[best]["inputs"]["k"] == 1
    prompt = small(prompt)
    prompt["901"] = {"class_type": "PreviewAny", "inputs": {"source": [best, 2]}}
    outputs = comfy.run(prompt).history_result["outputs"]

    (kept,) = outputs[saved]["images"]
    with Image.open(comfy.output / kept["subfolder"] / kept["filename"]) as picture:
        assert picture.size == (72, 56)
    (index,) = [int(i) for i in re.findall(r"\d+", outputs["901"]["text"][0])]
    lines = outputs[scores]["text"][0].splitlines()
    assert len(lines) == 2 and lines[1] == "kept 1 of 4 images, highest likeness first", lines
    assert 0 <= index < 4 and lines[0].startswith(f"{index}: "), lines


def small(api):
    """A copy of an API workflow made quick on the rig: 72x56 latents, 2 steps in every sampler."""
    prompt = copy.deepcopy(api)
    for key in nodes_of(prompt, "EmptyLatentImage"):
        prompt[key]["inputs"].update(width=72, height=56)
    for key in nodes_of(prompt, "KSampler"):
        prompt[key]["inputs"]["steps"] = 2
    return prompt


def test_similarity_sweep(comfy):
    """Three weights, one seed, scored: a report line per result, a mean in [-1, 1], images of the input size.

    The tiny random model paints no real faces: whether the test detector fires on its noise does not
    matter here, the node's own tests check the numbers.
    """
    prompt = small(workflow("pulid_similarity_sweep"))
    (similarity,) = nodes_of(prompt, "PuLIDSDXLFaceSimilarity")
    (report,) = nodes_of(prompt, "PreviewAny")
    (saved,) = nodes_of(prompt, "SaveImage")
    prompt["901"] = {"class_type": "PreviewAny", "inputs": {"source": [similarity, 0]}}
    outputs = comfy.run(prompt).history_result["outputs"]

    assert -1.0 <= float(outputs["901"]["text"][0]) <= 1.0
    lines = outputs[report]["text"][0].splitlines()
    assert len(lines) == 4 and [line.split(":")[0] for line in lines[:3]] == ["0", "1", "2"]
    assert lines[3].startswith("mean:")
    images = outputs[saved]["images"]
    assert len(images) == 3
    for image in images:
        with Image.open(comfy.output / image["subfolder"] / image["filename"]) as picture:
            assert picture.size == (72, 56)


def test_tradeoff(comfy):
    """Baseline and PuLID with fidelity and with style, one seed, evaluated in one batch: a labelled report line per image in
    the batch's order, preservation of the baseline against itself 1, the chart and the three annotated images
    saved. The numbers themselves are checked by the node's and the library's tests."""
    prompt = small(workflow("pulid_tradeoff"))
    (evaluate,) = nodes_of(prompt, "PuLIDSDXLEvaluate")
    saved = {tuple(prompt[k]["inputs"]["images"])[1]: k for k in nodes_of(prompt, "SaveImage")}
    for slot in range(4):
        prompt[f"90{slot}"] = {"class_type": "PreviewAny", "inputs": {"source": [evaluate, slot]}}
    outputs = comfy.run(prompt).history_result["outputs"]

    labels = prompt[evaluate]["inputs"]["labels"].splitlines()
    lines = outputs["903"]["text"][0].splitlines()
    assert len(lines) == 4 and lines[3].startswith("mean:")
    for index, (line, label) in enumerate(zip(lines, labels)):
        assert line.startswith(f"{index}: ") and line.endswith(f"| {label}")
    assert re.search(r"preservation (0\.99[5-9]\d|1\.0000)", lines[0]), lines[0]  # the baseline against itself
    assert 0.0 <= float(outputs["902"]["text"][0]) <= 1.0
    assert -100.0 <= float(outputs["901"]["text"][0]) <= 100.0
    (chart,) = outputs[saved[4]]["images"]
    with Image.open(comfy.output / chart["subfolder"] / chart["filename"]) as picture:
        assert picture.size == (1024, 768)
    annotated = outputs[saved[5]]["images"]
    assert len(annotated) == 3
    with Image.open(comfy.output / annotated[0]["subfolder"] / annotated[0]["filename"]) as picture:
        assert picture.size[0] == 72 and picture.size[1] > 56  # the numbers are written under each image


def face_fix(comfy, picture_size=(256, 320), face=(160, 128, 80)):
    """pulid_face_fix made quick on the rig (working size 256: a 32x32 latent, 2 steps) on a picture of one drawn
    face, saved into the input folder as the workflow's picture.png; (prompt, picture [H, W, 3] uint8)."""
    import cv2

    from testkit.faces import compose_faces

    picture, _ = compose_faces(*picture_size, [face])
    prompt = copy.deepcopy(workflow("pulid_face_fix"))
    assert [prompt[k]["inputs"]["image"] for k in nodes_of(prompt, "LoadImage")].count("picture.png") == 1
    cv2.imwrite(os.path.join(comfy.folder_paths.get_input_directory(), "picture.png"),
                cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    (crop,) = nodes_of(prompt, "PuLIDSDXLCropFace")
    (sampler,) = nodes_of(prompt, "KSampler")
    prompt[crop]["inputs"]["working_size"] = 256
    prompt[sampler]["inputs"]["steps"] = 2
    prompt[LATENT_NODE] = {"class_type": "SaveLatent",
                           "inputs": {"samples": [sampler, 0], "filename_prefix": "latents/face_fix"}}
    return prompt, picture


def inpainting_variant(prompt, checkpoint):
    """The face-fix graph for an SDXL inpainting checkpoint: InpaintModelConditioning takes the crop and its mask
    in place of VAE Encode + Set Latent Noise Mask and feeds the sampler's conditioning and latent."""
    prompt = copy.deepcopy(prompt)
    (ckpt,) = nodes_of(prompt, "CheckpointLoaderSimple")
    (sampler,) = nodes_of(prompt, "KSampler")
    (noise_mask,) = nodes_of(prompt, "SetLatentNoiseMask")
    (encode,) = nodes_of(prompt, "VAEEncode")
    inputs = prompt[sampler]["inputs"]
    prompt[ckpt]["inputs"]["ckpt_name"] = checkpoint
    prompt["910"] = {"class_type": "InpaintModelConditioning", "inputs": {
        "positive": inputs["positive"], "negative": inputs["negative"], "vae": prompt[encode]["inputs"]["vae"],
        "pixels": prompt[encode]["inputs"]["pixels"], "mask": prompt[noise_mask]["inputs"]["mask"],
        "noise_mask": True}}
    inputs.update(positive=["910", 0], negative=["910", 1], latent_image=["910", 2])
    del prompt[noise_mask], prompt[encode]
    return prompt


def _saved_picture(comfy, outputs, node):
    (image,) = outputs[node]["images"]
    with Image.open(comfy.output / image["subfolder"] / image["filename"]) as picture:
        return torch.from_numpy(np.array(picture.convert("RGB")))


@pytest.mark.parametrize("variant", ["shipped", "inpainting checkpoint"])
def test_face_fix(comfy, variant):
    """The picture comes back at its size with the face region redrawn and everything far from the face as it
    was (8-bit saving may move a value by one level); the detail pass samples the 256 px crop as a 32x32 latent.
    The inpainting variant runs the same graph through InpaintModelConditioning on a 9-channel checkpoint."""
    prompt, picture = face_fix(comfy)
    if variant != "shipped":
        prompt = inpainting_variant(prompt, comfy.inpaint_checkpoint)
    (saved,) = nodes_of(prompt, "SaveImage")
    outputs = comfy.run(prompt).history_result["outputs"]
    result, before = _saved_picture(comfy, outputs, saved).int(), torch.from_numpy(picture).int()
    assert result.shape == before.shape
    files = sorted(glob.glob(str(comfy.output / "latents" / "face_fix_*.latent")))
    assert load_file(files[-1])["latent_tensor"].shape[-2:] == (32, 32)
    # The crop is 2 x the 80 px face = 160 px around its centre (160, 128), the mask smaller still: the picture's
    # left and right 60 px columns are outside it.
    far = torch.ones(before.shape[:2], dtype=torch.bool)
    far[:, 60:260] = False
    assert (result - before).abs()[far].max() <= 1
    assert (result - before).abs()[~far].max() > 1  # the face was redrawn
    # The workflow's own edit check (Face Mask with the crop's grow, shape and feather; Evaluate with it as mask):
    # nothing changed outside the region the fix may change. (The rig's random UNet leaves no face to score.)
    (report,) = nodes_of(prompt, "PreviewAny")
    line = outputs[report]["text"][0].splitlines()[0]
    assert "| preservation 1.0000 | outside mask max diff 0.0000 | face fix" in line, line
