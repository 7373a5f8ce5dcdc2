"""Face pipeline end to end on generated antelopev2/facexlib/EVA files (see make_face_models)."""
import builtins
import copy
import os
import shutil

import cv2
import numpy as np
import onnxruntime
import pytest
import torch

from testkit import make_face_models as mfm
from pulid.errors import FaceNotFoundError, ModelFileError, PulidError, PulidFormatError
from pulid.eva_clip import EVA_CLIP_MEAN, EVA_CLIP_STD
from pulid.detector import FACE_CHOICES, parse_face_choice, resolve_providers, select_face
from pulid.face import FaceEncoder, mask_face, resize_long_side, to_rgb_uint8
from testkit.numerics import assert_close

SKINS = [(224, 172, 140), (204, 172, 140), (224, 192, 140)]  # all within the detector's skin range


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("face_models")
    return {
        "eva": mfm.write_eva_clip_checkpoint(str(root / "eva.safetensors"), "timm"),
        "ante_nested": mfm.write_antelopev2(str(root / "insightface_nested"), nested=True),
        "ante": mfm.write_antelopev2(str(root / "antelopev2")),
        "facexlib": mfm.write_facexlib(str(root / "facexlib")),
        "facexlib_blind": mfm.write_facexlib(str(root / "facexlib_blind"), faces=False),
        "root": root,
    }


@pytest.fixture(scope="module")
def encoder(model_files):
    """facexlib fires everywhere (so it always has a face to align); antelopev2 from a nested folder."""
    return FaceEncoder(model_files["eva"], model_files["ante_nested"], model_files["facexlib"], providers="CPU")


@pytest.fixture(scope="module")
def blind_encoder(model_files, encoder):
    """facexlib never fires; shares the loaded EVA module."""
    return FaceEncoder(encoder.eva, model_files["ante"], model_files["facexlib_blind"])


# Test images are 320x320 (the real RetinaFace-R50 and BiSeNet dominate the test time); the
# detector sees them at 640x640, so face centres sit at 16k + 8 and sides double.
def canvas(h=320, w=320, value=30):
    return np.full((h, w, 3), value, np.uint8)


def one_face_image():
    return mfm.draw_face(canvas(), (168, 152), 64)


def three_faces_image():
    image = canvas()
    mfm.draw_face(image, (56, 56), 48, SKINS[0])  # A: top-left, small
    mfm.draw_face(image, (248, 88), 80, SKINS[1])  # B: right, large
    mfm.draw_face(image, (136, 248), 64, SKINS[2])  # C: bottom, medium
    return image


def centre_colour(aligned):
    return np.median(aligned[224:288, 224:288].reshape(-1, 3), axis=0)


def centre(bbox):
    return np.array([(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2])


def arcface_reference(bgr_112):
    """Plain ArcFace in float64: RGB, (x - 127.5) / 127.5, NCHW, the torch network glintr100.onnx was exported
    from (make_face_models.antelopev2_networks, same seed)."""
    rgb = cv2.cvtColor(bgr_112, cv2.COLOR_BGR2RGB).astype(np.float64)
    blob = torch.from_numpy(((rgb - 127.5) / 127.5).transpose(2, 0, 1)[None].copy())
    with torch.no_grad():
        return mfm.antelopev2_networks()[1].double()(blob)[0]


def mask_reference(pixels, labels):
    """Per-pixel loop: label in the background set -> 1.0, else gray from RGB."""
    out = np.empty_like(pixels)
    for y in range(pixels.shape[0]):
        for x in range(pixels.shape[1]):
            r, g, b = pixels[y, x]
            out[y, x] = 1.0 if labels[y, x] in (0, 16, 18, 7, 8, 9, 14, 15) else 0.299 * r + 0.587 * g + 0.114 * b
    return out


def eva_reference(encoder, aligned_rgb):
    """BiSeNet labels (ImageNet-normalised input) -> white/gray -> bicubic 336 -> CLIP norm -> EVA."""
    x = torch.from_numpy(aligned_rgb).permute(2, 0, 1)[None].float() / 255.0
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        labels = encoder.parser((x - mean) / std)[0].argmax(1)[0].numpy()
        gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
        white = torch.from_numpy(np.isin(labels, [0, 16, 18, 7, 8, 9, 14, 15]))[None]
        masked = torch.where(white, torch.ones_like(gray), gray)[:, None].repeat(1, 3, 1, 1)
        # From here in float64: the reference for EVA's float32 output.
        resized = torch.nn.functional.interpolate(masked.double(), size=(336, 336), mode="bicubic",
                                                  align_corners=False, antialias=True)
        mean, std = (torch.tensor(v, dtype=torch.float64).view(1, 3, 1, 1) for v in (EVA_CLIP_MEAN, EVA_CLIP_STD))
        pooled, hidden = copy.deepcopy(encoder.eva).double()((resized - mean) / std)
    return masked, pooled / pooled.norm(dim=1, keepdim=True), hidden


# ------------------------------------------------------------------------------------- choices
def test_face_choices_and_parsing():
    assert FACE_CHOICES[0] == "largest" and len(FACE_CHOICES) == 25
    assert "left-to-right #1" in FACE_CHOICES and "size #8" in FACE_CHOICES
    assert parse_face_choice("largest") == ("size", 0)
    assert parse_face_choice("top-to-bottom #3") == ("top-to-bottom", 2)
    with pytest.raises(PulidError, match="largest"):
        parse_face_choice("biggest")


def test_providers():
    assert resolve_providers("CPU") == ["CPUExecutionProvider"]
    assert resolve_providers("auto")[-1] == "CPUExecutionProvider"
    assert resolve_providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(PulidError, match="onnxruntime-gpu.*CPUExecutionProvider|CPUExecutionProvider.*onnxruntime-gpu"):
            resolve_providers("CUDA")


# ------------------------------------------------------------------------------------- one face
def test_one_face_end_to_end(encoder, model_files):
    image = one_face_image()
    features = encoder.encode(image)
    face = features.face
    assert np.abs(centre(face.bbox) - (168, 152)).max() < 2
    assert 55 < face.bbox[2] - face.bbox[0] <= 65
    assert features.id_cond.shape == (1, 1280) and features.id_cond.dtype == torch.float32
    assert len(features.vit_hidden) == 5 and all(h.shape == (1, 577, 128) for h in features.vit_hidden)
    assert features.aligned.shape == features.masked.shape == (512, 512, 3)
    assert features.aligned.dtype == features.masked.dtype == np.uint8

    # ArcFace part: the raw embedding of the face, recomputed from its 5 points.
    from insightface.utils import face_align

    crop = face_align.norm_crop(cv2.cvtColor(image, cv2.COLOR_RGB2BGR), landmark=face.kps, image_size=112)
    raw = arcface_reference(crop)
    assert_close(features.id_cond[0, :512], raw, "network")
    assert abs(float(raw.norm()) - 1.0) > 1e-2  # raw, not normalised

    # EVA part: L2-normalised pooled output of the masked crop; hidden states as EVA returns them.
    masked, pooled, hidden = eva_reference(encoder, features.aligned)
    assert_close(features.id_cond[:, 512:], pooled, "network")
    for got, want in zip(features.vit_hidden, hidden):
        assert_close(got, want, "network")
    expected_preview = (masked[0].permute(1, 2, 0) * 255).round().numpy().astype(np.uint8)
    np.testing.assert_array_equal(features.masked, expected_preview)
    # The crop is centred on the face (skin colour in the middle).
    assert np.abs(centre_colour(features.aligned) - mfm.SKIN_RGB).max() < 4


def test_mask_face_matches_plain_reference():
    rng = np.random.default_rng(0)
    pixels = rng.random((12, 10, 3)).astype(np.float32)
    labels = rng.integers(0, 19, (12, 10))
    got = mask_face(torch.from_numpy(pixels).permute(2, 0, 1)[None], torch.from_numpy(labels)[None, None])
    want = mask_reference(pixels.astype(np.float64), labels)
    assert_close(got[0].permute(1, 2, 0), torch.from_numpy(want), "elementwise")


# ------------------------------------------------------------------------------------- several faces
def test_several_faces_each_order(encoder):
    image = three_faces_image()
    faces = encoder.detect(image)
    assert len(faces) == 3
    expected = {"A": (56, 56), "B": (248, 88), "C": (136, 248)}
    name = lambda f: min(expected, key=lambda k: np.abs(centre(f.bbox) - expected[k]).max())
    orders = {"left-to-right": "ACB", "top-to-bottom": "ABC", "size": "BCA"}
    for order, names in orders.items():
        for i, letter in enumerate(names):
            assert name(select_face(faces, f"{order} #{i + 1}")) == letter, (order, i)
    assert name(select_face(faces, "largest")) == "B"
    with pytest.raises(FaceNotFoundError, match="only 3 face"):
        select_face(faces, "size #4")

    # (one more choice is encoded in the warm-call test)
    for choice, letter, skin in (("largest", "B", SKINS[1]), ("left-to-right #1", "A", SKINS[0])):
        features = encoder.encode(image, face=choice)
        assert name(features.face) == letter
        assert np.abs(centre_colour(features.aligned) - skin).max() < 4, choice
        np.testing.assert_array_equal(features.id_cond[0, :512].numpy(), features.face.embedding)
    with pytest.raises(FaceNotFoundError, match="image 5") as caught:
        encoder.encode(image, face="size #4", image_index=5)
    assert caught.value.image_index == 5


# ------------------------------------------------------------------------------------- misses
def test_no_face_anywhere(blind_encoder):
    with pytest.raises(FaceNotFoundError, match="image 3") as caught:
        blind_encoder.encode(canvas(value=0), image_index=3)
    assert caught.value.image_index == 3


def test_insightface_miss_facexlib_hit_uses_arcface_on_crop(encoder, model_files):
    features = encoder.encode(canvas(value=90))
    assert features.face is None
    bgr = cv2.cvtColor(features.aligned, cv2.COLOR_RGB2BGR)
    small = cv2.resize(bgr, (112, 112), interpolation=cv2.INTER_LINEAR)
    assert_close(features.id_cond[0, :512], arcface_reference(small), "network")


def test_facexlib_miss_aligns_with_insightface_points(blind_encoder):
    features = blind_encoder.encode(one_face_image())
    assert features.face is not None
    assert np.abs(centre_colour(features.aligned) - mfm.SKIN_RGB).max() < 4


# ------------------------------------------------------------------------------------- inputs
def test_input_formats_agree():
    rgb = one_face_image()
    assert to_rgb_uint8(rgb) is not None and np.array_equal(to_rgb_uint8(rgb), rgb)
    np.testing.assert_array_equal(to_rgb_uint8(rgb.astype(np.float32) / 255.0), rgb)
    np.testing.assert_array_equal(to_rgb_uint8(torch.from_numpy(rgb).float() / 255.0), rgb)
    np.testing.assert_array_equal(to_rgb_uint8(torch.from_numpy(rgb).float()[None] / 255.0), rgb)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(to_rgb_uint8(rgba), rgb)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(to_rgb_uint8(gray), np.repeat(gray[:, :, None], 3, 2))
    np.testing.assert_array_equal(to_rgb_uint8(gray[:, :, None]), np.repeat(gray[:, :, None], 3, 2))
    with pytest.raises(PulidError, match="shape"):
        to_rgb_uint8(np.zeros((4, 4, 2), np.uint8))


def test_long_side_is_resized_to_1024(encoder):
    # 2048x256 -> 1024x128 (pipeline) -> 640x80 (detector); the face sits on a detector cell centre.
    image = canvas(256, 2048)
    mfm.draw_face(image, (1075, 154), 204)
    features = encoder.encode(image)
    assert np.abs(centre(features.face.bbox) - (537.6, 76.8)).max() < 4  # box in 1024-wide coordinates

    tall = np.random.default_rng(0).integers(0, 255, (3000, 1000, 3), dtype=np.uint8)
    out = resize_long_side(tall)
    assert out.shape == (1024, 341, 3)
    np.testing.assert_array_equal(out, cv2.resize(tall, (341, 1024), interpolation=cv2.INTER_LANCZOS4))
    small = canvas()
    assert resize_long_side(small) is small


def test_real_photos_plumbing(encoder):
    import insightface

    folder = os.path.join(os.path.dirname(insightface.__file__), "data", "images")
    group = cv2.cvtColor(cv2.imread(os.path.join(folder, "t1.jpg")), cv2.COLOR_BGR2RGB)
    for face in encoder.detect(group):
        assert len(face.bbox) == 4 and face.kps.shape == (5, 2) and face.embedding.shape == (512,)
    portrait = cv2.cvtColor(cv2.imread(os.path.join(folder, "Tom_Hanks_54745.png")), cv2.COLOR_BGR2RGB)
    features = encoder.encode(portrait)
    assert features.id_cond.shape == (1, 1280) and torch.isfinite(features.id_cond).all()
    assert features.aligned.shape == (512, 512, 3)


# ------------------------------------------------------------------------------------- warm calls, devices
def test_warm_calls_read_no_files_and_to_keeps_float32(encoder, monkeypatch):
    assert set(encoder.torch_modules) == {"eva_clip", "face_detector", "face_parser"}

    def refuse(*args, **kwargs):
        raise AssertionError("file access or model construction during a warm call")

    try:
        encoder.to("cpu", torch.bfloat16)
        assert next(encoder.eva.parameters()).dtype == torch.bfloat16
        monkeypatch.setattr(builtins, "open", refuse)
        monkeypatch.setattr(torch, "load", refuse)
        monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
        # ComfyUI hands over float32 [0,1] images.
        features = encoder.encode(three_faces_image().astype(np.float32) / 255.0, face="top-to-bottom #3")
        assert np.abs(centre(features.face.bbox) - (136, 248)).max() < 2
        assert np.abs(centre_colour(features.aligned) - SKINS[2]).max() < 4
        assert features.id_cond.dtype == torch.float32 and features.vit_hidden[0].dtype == torch.float32
    finally:
        monkeypatch.undo()
        encoder.to("cpu", torch.float32)


# ------------------------------------------------------------------------------------- bad files
def test_missing_antelopev2(model_files, tmp_path):
    with pytest.raises(ModelFileError, match=r"antelopev2 not found in .*empty.*scrfd_10g_bnkps.onnx.*glintr100.onnx"):
        FaceEncoder(model_files["eva"], str(tmp_path / "empty"), model_files["facexlib"])


def test_corrupt_onnx(model_files, tmp_path):
    folder = tmp_path / "antelopev2"
    shutil.copytree(model_files["ante"], folder)
    (folder / "glintr100.onnx").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(PulidFormatError, match="glintr100.onnx"):
        FaceEncoder(model_files["eva"], str(folder), model_files["facexlib"])
    shutil.copy(folder / "scrfd_10g_bnkps.onnx", folder / "glintr100.onnx")
    with pytest.raises(PulidFormatError, match="glintr100.onnx.*recognition"):
        FaceEncoder(model_files["eva"], str(folder), model_files["facexlib"])


def test_missing_facexlib_file(model_files, tmp_path):
    folder = tmp_path / "facexlib"
    folder.mkdir()
    shutil.copy(os.path.join(model_files["facexlib"], "parsing_bisenet.pth"), folder)
    with pytest.raises(ModelFileError) as caught:
        FaceEncoder(model_files["eva"], model_files["ante"], str(folder))
    message = str(caught.value)
    assert str(folder) in message and "detection_Resnet50_Final.pth" in message and "https://" in message
    assert sorted(os.listdir(folder)) == ["parsing_bisenet.pth"]  # nothing downloaded or created


def test_wrong_facexlib_file(model_files, tmp_path):
    folder = tmp_path / "facexlib"
    shutil.copytree(model_files["facexlib"], folder)
    shutil.copy(folder / "detection_Resnet50_Final.pth", folder / "parsing_bisenet.pth")
    with pytest.raises(PulidFormatError, match="parsing_bisenet.pth"):
        FaceEncoder(model_files["eva"], model_files["ante"], str(folder))
    (folder / "parsing_bisenet.pth").write_bytes(b"truncated")
    with pytest.raises(PulidFormatError, match="parsing_bisenet.pth"):
        FaceEncoder(model_files["eva"], model_files["ante"], str(folder))


def test_only_the_chosen_face_goes_through_arcface(encoder, monkeypatch):
    calls = []
    real = encoder.recognizer.get
    monkeypatch.setattr(encoder.recognizer, "get", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    encoder.encode(three_faces_image(), face="left-to-right #2")
    assert len(calls) == 1
    chosen = encoder.choose(three_faces_image(), "size #1")
    assert len(calls) == 2 and chosen.embedding.shape == (512,)
    assert len(encoder.detect(three_faces_image())) == 3 and len(calls) == 5  # detect embeds every face
