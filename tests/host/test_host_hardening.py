"""Hostile inputs through ComfyUI's executor: what a careless graph feeds the pack is a clear error naming the
input (or lands where it must), on every CI host. The pack's own tests check the same functions directly."""
import json
import os
import re
import shutil

import pytest
import torch

from test_host_workflows import LATENT_NODE, execution_error, nodes_of, shrink, workflow

pytestmark = pytest.mark.host


def test_nan_mask_fails_at_apply_naming_it(comfy):
    prompt = shrink(workflow("pulid_two_identities"), "nan_mask")
    (solid, _) = nodes_of(prompt, "SolidMask")
    prompt[solid]["inputs"]["value"] = float("nan")  # NaN passes SolidMask's 0..1 check
    valid = comfy.validate(prompt)
    if not valid[0]:  # a host that rejects NaN at validation is fine too, if it names the input
        assert "value" in json.dumps(valid[3].get(solid, {})), valid
        return
    error = execution_error(comfy, prompt, [LATENT_NODE])
    first_apply = nodes_of(prompt, "PuLIDSDXLApply")[0]
    assert error["node_id"] == first_apply and "attn_mask contains NaN" in error["exception_message"]


def test_0_to_255_image_fails_at_encode_naming_it(comfy):
    prompt = workflow("pulid_save_embeds")
    (encode,) = nodes_of(prompt, "PuLIDSDXLEncodeFace")
    prompt["970"] = {"class_type": "PulidTestScaleImage", "inputs": {"image": prompt[encode]["inputs"]["image"],
                                                                     "factor": 255.0}}
    prompt[encode]["inputs"]["image"] = ["970", 0]
    (save,) = nodes_of(prompt, "PuLIDSDXLSaveEmbeds")
    error = execution_error(comfy, prompt, [save])
    assert error["node_id"] == encode
    assert re.search(r"Image 0 has pixel values up to \d+: .*0\.\.255", error["exception_message"])


@pytest.mark.parametrize("which", ["reference", "images"])
def test_face_similarity_with_an_empty_batch_names_it(comfy, which):
    prompt = {
        "3": {"class_type": "PuLIDSDXLFaceEncoderLoader", "inputs": {
            "eva_clip_file": "EVA02_CLIP_L_336_psz14_s6B.pt", "insightface_model": "antelopev2", "provider": "CPU"}},
        "4": {"class_type": "LoadImage", "inputs": {"image": "face.png"}},
        "5": {"class_type": "PulidTestEmptyImageBatch", "inputs": {"image": ["4", 0]}},
        "6": {"class_type": "PuLIDSDXLFaceSimilarity", "inputs": {
            "face_encoder": ["3", 0], "reference": ["4", 0], "images": ["4", 0], "face": "largest"}},
        "7": {"class_type": "PreviewAny", "inputs": {"source": ["6", 1]}},
    }
    prompt["6"]["inputs"][which] = ["5", 0]
    error = execution_error(comfy, prompt, ["7"])
    word = "reference" if which == "reference" else "image"
    assert error["node_id"] == "6" and f"empty {word} batch" in error["exception_message"]


@pytest.mark.parametrize("prefix", ["", ".", "./"])
def test_save_embeds_with_an_empty_prefix_stays_in_the_embeddings_folder(comfy, prefix):
    prompt = workflow("pulid_save_embeds")
    (save,) = nodes_of(prompt, "PuLIDSDXLSaveEmbeds")
    prompt[save]["inputs"]["filename_prefix"] = prefix
    before = set(comfy.folder_paths.get_filename_list("pulid_sdxl_embeds"))
    models_before = set(comfy.folder_paths.get_filename_list("pulid"))
    comfy.run(prompt, [save])
    added = set(comfy.folder_paths.get_filename_list("pulid_sdxl_embeds")) - before
    name = added.pop() if len(added) == 1 else added
    assert isinstance(name, str) and "/" not in name and os.sep not in name, name
    assert set(comfy.folder_paths.get_filename_list("pulid")) == models_before


@pytest.mark.parametrize("prefix", ["..", "../face", "/tmp/face"])
def test_save_embeds_with_a_prefix_leaving_the_folder_names_it(comfy, prefix):
    prompt = workflow("pulid_save_embeds")
    (save,) = nodes_of(prompt, "PuLIDSDXLSaveEmbeds")
    prompt[save]["inputs"]["filename_prefix"] = prefix
    error = execution_error(comfy, prompt, [save])
    assert error["node_id"] == save and "filename_prefix" in error["exception_message"]


def model_loader_error(comfy, class_type, inputs):
    """The execution error of a loader node whose output goes to Preview Any: nothing else runs."""
    prompt = {"2": {"class_type": class_type, "inputs": inputs},
              "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}}}
    error = execution_error(comfy, prompt, ["3"])
    assert error["node_id"] == "2", error
    return error["exception_message"]


@pytest.mark.parametrize("cut", [200, 2000])
def test_damaged_legacy_bin_is_called_damaged(comfy, cut):
    """A cut legacy-format (non-zip) torch file: "truncated or corrupt, download again", never "refused"
    (cut at 200 bytes the stream stops inside a global's name, which the weights-only loader calls code)."""
    path = comfy.models / "pulid" / f"damaged_{cut}_pulid_v1.bin"
    whole = comfy.models / "whole.bin"
    torch.save({"a": torch.randn(100, 100)}, whole, _use_new_zipfile_serialization=False)
    path.write_bytes(whole.read_bytes()[:cut])
    whole.unlink()
    try:
        message = model_loader_error(comfy, "PuLIDSDXLModelLoader", {"pulid_file": path.name})
    finally:
        path.unlink()
    assert f"PuLID model file {path} is truncated or corrupt" in message and "download it again" in message
    assert "refused" not in message


def test_embeddings_file_with_nan_tokens_fails_at_load_naming_it(comfy):
    """Loaded as is, such a file would sample an all-NaN latent without a word."""
    embedding = comfy.pack.pulid.embedding
    folder = comfy.models / "pulid_sdxl_embeds"
    folder.mkdir(exist_ok=True)
    path = folder / "nan_face_00001.safetensors"
    cond = torch.randn(1, 32, 2048)
    cond[0, 3, 5] = float("nan")
    embedding.IDEmbedding(cond, torch.zeros(1, 32, 2048), "v1.1").save(path)
    try:
        message = model_loader_error(comfy, "PuLIDSDXLLoadEmbeds", {"embeds_file": path.name})
    finally:
        path.unlink()
    assert message.startswith(f"PuLID embeddings file {path} holds NaN or infinite tokens")
    assert "Encode the face again and save it again" in message


@pytest.mark.parametrize("present", [(), ("scrfd_10g_bnkps.onnx",)], ids=["empty", "no glintr100"])
def test_incomplete_insightface_folder_names_it_and_the_missing_files(comfy, present):
    """Either way the one wording of the README's row, naming the folder and what to download."""
    models = comfy.models / "insightface" / "models"
    folder = models / ("antelopev2_" + "_".join(["empty", *present]).replace(".", "_"))
    folder.mkdir()
    for name in present:
        os.link(models / "antelopev2" / "antelopev2" / name, folder / name)
    try:
        message = model_loader_error(comfy, "PuLIDSDXLFaceEncoderLoader", {
            "eva_clip_file": "EVA02_CLIP_L_336_psz14_s6B.pt", "insightface_model": folder.name, "provider": "CPU"})
    finally:
        shutil.rmtree(folder)
    missing = [n for n in ("scrfd_10g_bnkps.onnx", "glintr100.onnx") if n not in present]
    assert message.startswith(f"insightface antelopev2 not found in {folder}: missing {', '.join(missing)}. Download")
    assert "fetch-models" in message
