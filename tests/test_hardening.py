"""Inputs a careless user (or a buggy upstream node) gives: each is a clear error naming it, or safe."""
import math
import os

import numpy as np
import pytest
import torch

from pack import pack_module

errors = pack_module("pulid.errors")
embeds_nodes = pack_module("nodes.embeds")
apply_nodes = pack_module("nodes.apply")
face = pack_module("pulid.face")
similarity = pack_module("pulid.similarity")


@pytest.mark.parametrize("prefix,folder,stem", [
    ("face", "", "face"), ("", "", "face"), (".", "", "face"), ("./", "", "face"), ("people/anna", "people", "anna"),
    ("people/", "people", "face"), ("people/./anna", "people", "anna")])
def test_filename_prefix_stays_inside_the_embeddings_folder(tmp_path, prefix, folder, stem):
    root = str(tmp_path / "pulid_sdxl_embeds")
    got_folder, got_stem = embeds_nodes.safe_prefix(root, prefix)
    assert (got_folder, got_stem) == (os.path.join(root, *filter(None, [folder])), stem)


@pytest.mark.parametrize("prefix", ["..", "../face", "people/../../face", "/tmp/face", "a/../../b"])
def test_filename_prefix_leaving_the_folder_is_refused(tmp_path, prefix):
    with pytest.raises(errors.PulidError, match="filename_prefix"):
        embeds_nodes.safe_prefix(str(tmp_path / "pulid_sdxl_embeds"), prefix)


@pytest.mark.parametrize("name", ["weight", "start_at", "end_at"])
def test_nan_numbers_are_named_at_apply_time(name):
    values = {"weight": 1.0, "start_at": 0.0, "end_at": 1.0, name: math.nan}
    with pytest.raises(errors.PulidError, match=f"{name} is nan"):
        apply_nodes.check_numbers(values["weight"], values["start_at"], values["end_at"], None)


def test_nan_mask_is_named_at_apply_time():
    mask = torch.ones(8, 8)
    mask[2, 3] = math.nan
    with pytest.raises(errors.PulidError, match="attn_mask contains NaN"):
        apply_nodes.check_numbers(1.0, 0.0, 1.0, mask)
    apply_nodes.check_numbers(1.0, 0.0, 1.0, torch.ones(8, 8))  # a normal mask passes


def test_0_to_255_float_image_is_an_error_naming_it():
    image = np.full((32, 32, 3), 200.0, np.float32)
    with pytest.raises(errors.PulidError, match="Image 3 has pixel values up to 200.*0..255"):
        face.to_rgb_uint8(image, image_index=3)
    slightly_over = np.full((4, 4, 3), 1.02, np.float32)  # upscaler overshoot: clipped, no error
    assert face.to_rgb_uint8(slightly_over).max() == 255
    with pytest.raises(errors.PulidError, match="NaN"):
        face.to_rgb_uint8(np.full((4, 4, 3), np.nan, np.float32))


@pytest.mark.parametrize("which", ["reference", "images"])
def test_face_similarity_with_an_empty_batch_says_which(which):
    batches = {"reference": [np.zeros((8, 8, 3), np.uint8)], "images": [np.zeros((8, 8, 3), np.uint8)]}
    batches[which] = torch.zeros(0, 8, 8, 3)
    with pytest.raises(errors.PulidError, match=f"empty {'reference' if which == 'reference' else 'image'} batch"):
        similarity.face_similarity(object(), batches["reference"], batches["images"])
