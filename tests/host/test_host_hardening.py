"""Hostile inputs through ComfyUI's executor: what a careless graph feeds the pack is a clear error naming the
input (or lands where it must), on every CI host. The pack's own tests check the same functions directly."""
import json
import os
import re

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


def test_damaged_legacy_bin_is_called_damaged(comfy):
    """A cut legacy-format (non-zip) torch file: "truncated or corrupt, download again", never "refused"."""
    path = comfy.models / "pulid" / "damaged_pulid_v1.bin"
    whole = comfy.models / "whole.bin"
    torch.save({"a": torch.randn(100, 100)}, whole, _use_new_zipfile_serialization=False)
    path.write_bytes(whole.read_bytes()[:2000])
    whole.unlink()
    try:
        prompt = {"2": {"class_type": "PuLIDSDXLModelLoader", "inputs": {"pulid_file": path.name}},
                  "3": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}}}
        error = execution_error(comfy, prompt, ["3"])
    finally:
        path.unlink()
    message = error["exception_message"]
    assert error["node_id"] == "2" and "truncated or corrupt" in message and "download it again" in message
    assert path.name in message and "refused" not in message
