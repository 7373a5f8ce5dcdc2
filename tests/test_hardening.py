"""Inputs a careless user (or a buggy upstream node) gives: each is a clear error naming it, or safe."""
import math
import os
import re

import numpy as np
import pytest
import torch

from testkit.pack import ROOT, pack_module

errors = pack_module("pulid.errors")
checkpoint = pack_module("pulid.checkpoint")
embedding = pack_module("pulid.embedding")
folders_nodes = pack_module("nodes.folders")
embeds_nodes = pack_module("nodes.embeds")
apply_nodes = pack_module("nodes.apply")
face = pack_module("pulid.face")
detector = pack_module("pulid.detector")
eva_clip = pack_module("pulid.eva_clip")
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


# ------------------------------------------------------------------ the README's troubleshooting table
def troubleshooting_rows():
    """The message column of the README's Troubleshooting table: each row's first `code` span."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        table = f.read().split("\n## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| (?:\w+: )?`([^`]+)`", table, re.M)


def assert_row_for(message):
    """Some row reads like `message`: the same opening words, "…" standing for a file name or a detail."""
    patterns = ["^" + ".+?".join(re.escape(piece) for piece in row.split("…")) for row in troubleshooting_rows()]
    assert any(re.match(p, message, re.S) for p in patterns), f"no README troubleshooting row for: {message}"


def test_troubleshooting_table_is_found():
    rows = troubleshooting_rows()
    assert len(rows) > 20 and rows[0].startswith("PuLID model file not found")


@pytest.mark.parametrize("damage", ["cut", "code"])
def test_damaged_and_malicious_checkpoints_have_their_rows(tmp_path, damage):
    path = tmp_path / "pulid_v1.bin"
    torch.save({"a": torch.ones(3)}, path, _use_new_zipfile_serialization=False)
    if damage == "cut":
        path.write_bytes(path.read_bytes()[:60])
    else:
        torch.save({"a": os.getcwd}, path, _use_new_zipfile_serialization=False)  # names a function: code
    with pytest.raises(errors.PulidFormatError) as err:
        checkpoint.read_state_dict(str(path))
    message = str(err.value)
    assert ("was refused" in message) == (damage == "code")
    assert_row_for(message)


@pytest.mark.parametrize("damage", ["cut", "code"])
@pytest.mark.parametrize("reader", ["eva-clip", "facexlib"])
def test_every_weights_file_tells_damage_from_code_with_its_own_opening(tmp_path, reader, damage):
    """EVA-CLIP and the facexlib nets are read by the same reader as PuLID checkpoints: a cut download is
    "truncated or corrupt", a file naming code is "refused", each under its loader's own opening words."""
    name = "EVA02_CLIP_L_336_psz14_s6B.pt" if reader == "eva-clip" else "parsing_bisenet.pth"
    path = tmp_path / name
    torch.save({"a": torch.ones(3) if damage == "cut" else os.getcwd}, path, _use_new_zipfile_serialization=False)
    if damage == "cut":
        path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(errors.PulidFormatError) as err:
        if reader == "eva-clip":
            eva_clip.load_eva_clip(path)
        else:
            face._load_torch_net(tmp_path, name, build=None)
    message = str(err.value)
    kind = "PyTorch or safetensors" if reader == "eva-clip" else "PyTorch"
    assert message.startswith(f"{path}: cannot be read as a {kind} checkpoint: it "), message
    assert ("was refused" in message) == (damage == "code")
    assert ("is truncated or corrupt" in message) == (damage == "cut")
    assert_row_for(message)


# ------------------------------------------------------------------ non-finite saved embeddings
@pytest.mark.parametrize("where,value", [("cond", math.nan), ("uncond", math.inf), ("cond", -math.inf)])
def test_embeddings_file_with_non_finite_tokens_is_refused_naming_it(tmp_path, where, value):
    """A hand-made or damaged file would otherwise sample an all-NaN latent without a word."""
    tokens = {"cond": torch.randn(1, 32, 2048), "uncond": torch.zeros(1, 32, 2048)}
    tokens[where][0, 5, 7] = value
    path = tmp_path / "face_00001.safetensors"
    embedding.IDEmbedding(tokens["cond"], tokens["uncond"], "v1.1").save(path)
    with pytest.raises(errors.PulidFormatError) as err:
        embedding.IDEmbedding.load(path)
    message = str(err.value)
    assert message.startswith(f"PuLID embeddings file {path} holds NaN or infinite tokens")
    assert "Encode the face again and save it again" in message
    assert_row_for(message)


def test_finite_embeddings_file_still_loads(tmp_path):
    path = tmp_path / "face_00001.safetensors"
    embedding.IDEmbedding(torch.randn(1, 10, 2048), torch.zeros(1, 10, 2048), "v1").save(path)
    assert embedding.IDEmbedding.load(path, expected_version="v1").num_tokens == 10


# ------------------------------------------------------------------ incomplete antelopev2 folders
def antelopev2_folder(folder, files):
    os.makedirs(folder, exist_ok=True)
    for name in files:
        with open(os.path.join(folder, name), "wb") as f:
            f.write(b"onnx")  # only looked for here, never loaded
    return str(folder)


@pytest.mark.parametrize("present,missing", [
    ((), ("scrfd_10g_bnkps.onnx", "glintr100.onnx")),
    (("scrfd_10g_bnkps.onnx",), ("glintr100.onnx",)),
    (("glintr100.onnx", "1k3d68.onnx"), ("scrfd_10g_bnkps.onnx",)),
], ids=["empty", "no recognizer", "no detector"])
def test_incomplete_antelopev2_folder_has_one_wording(tmp_path, present, missing):
    folder = antelopev2_folder(tmp_path / "antelopev2", present)
    with pytest.raises(errors.ModelFileError) as err:
        detector.find_antelopev2(folder)
    message = str(err.value)
    assert message == str(detector.antelopev2_not_found(folder, missing))
    assert message.startswith(f"insightface antelopev2 not found in {folder}: missing {', '.join(missing)}. Download")
    assert "models/insightface/models/antelopev2" in message and "fetch-models" in message
    assert_row_for(message)


def test_nested_antelopev2_folder_names_what_it_lacks(tmp_path):
    """The zip unpacked as is (antelopev2/antelopev2/) with one file: the missing list is the nested folder's."""
    folder = str(tmp_path / "antelopev2")
    antelopev2_folder(os.path.join(folder, "antelopev2"), ["scrfd_10g_bnkps.onnx"])
    with pytest.raises(errors.ModelFileError, match=r"missing glintr100\.onnx\. Download"):
        detector.find_antelopev2(folder)
    antelopev2_folder(os.path.join(folder, "antelopev2"), ["glintr100.onnx"])
    assert detector.find_antelopev2(folder)[1] == os.path.join(folder, "antelopev2", "glintr100.onnx")


def test_loader_node_folder_lookup_words_it_the_same(tmp_path, monkeypatch):
    roots = [str(tmp_path / "a"), str(tmp_path / "b")]
    monkeypatch.setattr(folders_nodes, "_model_roots", lambda name: roots if name == "insightface" else [])
    folders = [os.path.join(root, "models", "antelopev2") for root in roots]
    with pytest.raises(errors.ModelFileError) as err:  # no folder at all
        folders_nodes.insightface_dir("antelopev2")
    assert str(err.value) == str(detector.antelopev2_not_found(", ".join(folders)))
    assert_row_for(str(err.value))
    antelopev2_folder(folders[0], [])  # an empty folder: the face encoder's error names it and both files
    assert folders_nodes.insightface_dir("antelopev2") == folders[0]
    antelopev2_folder(os.path.join(folders[1], "antelopev2"), detector.ANTELOPE_FILES)  # complete, one level deeper
    assert folders_nodes.insightface_dir("antelopev2") == os.path.join(folders[1], "antelopev2")
