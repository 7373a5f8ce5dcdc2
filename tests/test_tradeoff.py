"""Prompt adherence (CLIP-T) and preservation: CLIP's preprocessing, answers known by construction, errors."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from testkit import make_face_models as mfm
from pulid.clip_text import load_clip_text
from pulid.errors import PulidError
from pulid.eva_clip import EVA_CLIP_MEAN, EVA_CLIP_STD, load_eva_clip
from pulid.clip_text import empty_prompt
from pulid.image_input import to_rgb_uint8
from pulid.tradeoff import Clip, image_embeddings, preservation, preservation_from_embeddings, prompt_adherence
from testkit.numerics import BUDGET, assert_close, error_ratio


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = mfm.write_eva_clip_checkpoint(tmp_path_factory.mktemp("tradeoff") / "EVA02_CLIP_L_336_psz14_s6B.pt",
                                         "eva-clip", embed_dim=128, depth=20)
    return Clip(load_eva_clip(path), load_clip_text(path))


def smooth(height, width, seed):
    """A smooth RGB picture in [0, 1] (HxWx3 float32): photos change smoothly, and float32 resizing errors
    grow with the pixel-to-pixel change (CONTRIBUTING.md, "Float comparisons")."""
    coarse = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    image = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    return image[0].permute(1, 2, 0).float().numpy()


def reference_embedding(vision, image, resized, top, left):
    """Float64 CLIP preprocessing with the sizes worked out by hand, then the tower in float64."""
    pixels = torch.from_numpy(np.asarray(image, np.float64)).permute(2, 0, 1)[None]
    if resized != tuple(pixels.shape[-2:]):
        pixels = F.interpolate(pixels, size=resized, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    pixels = pixels[:, :, top:top + 336, left:left + 336]
    mean = torch.tensor(EVA_CLIP_MEAN, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(EVA_CLIP_STD, dtype=torch.float64).view(1, 3, 1, 1)
    with torch.no_grad():
        pooled, _ = copy.deepcopy(vision).double()((pixels - mean) / std)
    return F.normalize(pooled, dim=-1)[0]


# (height, width) -> resized (height, width), crop top, crop left: torchvision's Resize(336) + CenterCrop(336)
CASES = [((300, 400), (336, 448), 0, 56), ((500, 336), (500, 336), 82, 0), ((999, 333), (1008, 336), 336, 0),
         ((512, 512), (336, 336), 0, 0)]


def test_image_embeddings_match_reference(clip):
    images = [smooth(*size, seed=i) for i, (size, *_) in enumerate(CASES)]
    got = image_embeddings(clip.vision, images)
    assert got.shape == (len(CASES), 768) and got.dtype == torch.float32
    want = torch.stack([reference_embedding(clip.vision, image, resized, top, left)
                        for image, (_, resized, top, left) in zip(images, CASES)])
    assert_close(got, want, "network")
    # the comparison can fail: a plain squash to 336x336 (no crop) is another embedding
    squashed = reference_embedding(clip.vision, images[0], (336, 336), 0, 0)
    assert error_ratio(got[0], squashed) > BUDGET["network"]


def test_batch_forms_and_dtypes_agree(clip):
    images = [smooth(256, 320, seed=s) for s in (1, 2)]
    as_uint8 = [np.round(i * 255).astype(np.uint8) for i in images]
    from_uint8 = image_embeddings(clip.vision, as_uint8)
    as_float = torch.from_numpy(np.stack(as_uint8)).float() / 255  # a ComfyUI IMAGE batch [N, H, W, 3]
    assert torch.equal(image_embeddings(clip.vision, as_float), from_uint8)
    assert torch.equal(image_embeddings(clip.vision, torch.from_numpy(np.stack(as_uint8))), from_uint8)
    rgba = [np.concatenate([i, np.ones_like(i[:, :, :1])], axis=2) for i in images]
    assert torch.equal(image_embeddings(clip.vision, rgba), image_embeddings(clip.vision, images))


def test_preservation_of_an_image_with_itself_is_one(clip):
    images = [smooth(320, 256, seed=s) for s in (3, 4, 5)]
    same = preservation(clip, images, images)
    assert_close(torch.tensor(same), torch.ones(3, dtype=torch.float64), "elementwise", dtype=torch.float32)
    other = preservation(clip, images, images[::-1])
    assert other[1] == same[1]  # the middle one is its own baseline
    for value in (other[0], other[2]):
        assert error_ratio(torch.tensor([value]), torch.ones(1, dtype=torch.float64), dtype=torch.float32) \
            > BUDGET["elementwise"]
        assert -1.0 <= value < 1.0


def test_preservation_is_the_cosine_of_the_embeddings(clip):
    images = [smooth(320, 256, seed=s) for s in (6, 7)]
    baseline = smooth(640, 512, seed=8)  # a different size is fine: each is preprocessed on its own
    got = preservation(clip, images, baseline)
    e = image_embeddings(clip.vision, images).double()
    b = image_embeddings(clip.vision, [baseline]).double()[0]
    assert_close(torch.tensor(got), e @ b, "elementwise", dtype=torch.float32, scale=1.0)
    # one baseline for all == one per image (the tower runs on a batch of 2 then: float32 of another batch size)
    assert_close(torch.tensor(preservation(clip, images, [baseline, baseline])), e @ b, "network",
                 dtype=torch.float32, scale=1.0)
    assert got == preservation(clip, images, np.stack([baseline]))
    assert got == preservation(clip, None, baseline, embeddings=image_embeddings(clip.vision, images))


def test_preservation_from_embeddings_is_preservation(clip):
    """The plain function of two embedding batches: a baseline embedded once serves any later batch."""
    images = [smooth(320, 256, seed=s) for s in (6, 7, 8)]
    baseline = smooth(320, 256, seed=9)
    e, b = image_embeddings(clip.vision, images), image_embeddings(clip.vision, [baseline])
    got = preservation_from_embeddings(e, b)
    assert got == preservation(clip, images, [baseline])  # the same float computation
    assert_close(torch.tensor(got), e.double() @ b.double()[0], "elementwise", dtype=torch.float32, scale=1.0)
    assert preservation_from_embeddings(e, e) == preservation_from_embeddings(e, torch.cat([e[:1], e[1:]]))
    with pytest.raises(PulidError, match="`baseline` has 2 images for 3 images"):
        preservation_from_embeddings(e, e[:2])


def _text_pointing_at(text, prompt, target, seed=0):
    """A copy of the text tower whose projection sends `prompt` exactly onto `target` (unit, [D]) and every
    other prompt elsewhere: the prompt's pooled feature f (read with an identity projection) maps to target,
    the directions orthogonal to f go through a random matrix."""
    text = copy.deepcopy(text)
    tower = text.tower
    width = tower.text_projection.shape[0]
    tower.text_projection = torch.nn.Parameter(torch.eye(width), requires_grad=False)
    feature = text.encode([prompt])[0][0].double()  # unit f
    rest = torch.randn(width, target.shape[0], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    projection = feature[:, None] * target.double()[None] + (torch.eye(width, dtype=torch.float64)
                                                             - feature[:, None] * feature[None]) @ rest
    tower.text_projection = torch.nn.Parameter(projection.float(), requires_grad=False)
    return text


def test_prompt_adherence_is_100_times_the_cosine(clip):
    images = [smooth(400, 300, seed=s) for s in (9, 10)]
    e = image_embeddings(clip.vision, images)
    prompt = "a portrait of a woman, (studio light:1.2)"
    pointed = Clip(clip.vision, _text_pointing_at(clip.text, prompt, e[0]))
    got = prompt_adherence(pointed, images, prompt)
    want = 100.0 * (e.double() @ e[0].double())  # [100, 100 cos(e1, e0)]
    assert_close(torch.tensor(got), want, "layer", dtype=torch.float32)
    assert got == prompt_adherence(pointed, images, [prompt, prompt])
    assert got == prompt_adherence(pointed, None, prompt, embeddings=e)
    # another prompt does not point at the image: its score is clearly lower
    other = prompt_adherence(pointed, images[:1], "a bowl of fruit")[0]
    assert error_ratio(torch.tensor([other]), torch.tensor([100.0], dtype=torch.float64), dtype=torch.float32) \
        > BUDGET["layer"]
    per_image = prompt_adherence(pointed, images, [prompt, "a bowl of fruit"])  # text batch of 2
    assert_close(torch.tensor(per_image[:1]), want[:1], "network", dtype=torch.float32)
    assert error_ratio(torch.tensor(per_image[1:]), want[1:], dtype=torch.float32) > BUDGET["network"]


def test_prompt_adherence_matches_the_text_embeddings(clip):
    images = [smooth(336, 336, seed=11)]
    prompts = ["a red hat"]
    t, _ = clip.text.encode(prompts)
    e = image_embeddings(clip.vision, images)
    got = prompt_adherence(clip, images, prompts)
    assert_close(torch.tensor(got), 100.0 * (e.double() @ t.double()[0]), "elementwise", dtype=torch.float32,
                 scale=100.0)


# ----------------------------------------------------------------------------------- errors
def test_errors_name_the_input(clip):
    image = smooth(64, 64, seed=12)
    cases = [
        (lambda: prompt_adherence(clip, [], "a cat"), "`images` is empty"),
        (lambda: preservation(clip, [], [image]), "`images` is empty"),
        (lambda: image_embeddings(clip.vision, []), "`images` is empty"),
        (lambda: prompt_adherence(clip, [image], ""), "`prompt` is empty"),
        (lambda: prompt_adherence(clip, [image], []), "`prompt` is empty"),
        (lambda: prompt_adherence(clip, [image], ["(:1.3)"]), "`prompt` is empty"),
        (lambda: prompt_adherence(clip, [image] * 3, ["a", "b"]), "`prompt` has 2 prompts for 3 images"),
        (lambda: preservation(clip, [image] * 3, [image] * 2), "`baseline` has 2 images for 3 images"),
        (lambda: preservation(clip, [image], []), "`baseline` is empty"),
        (lambda: preservation(clip, [image], None), "`baseline` is missing"),
        (lambda: preservation(clip, [image], [image * 255]), r"`baseline` 0 has pixel values up to \d+: .* 0..255"),
        (lambda: preservation(clip, [image], [np.full((8, 8, 3), np.nan, np.float32)]), "`baseline` 0 .*NaN"),
        (lambda: image_embeddings(clip.vision, [image, np.zeros((8, 8, 5))]), r"`images` 1 has shape \(8, 8, 5\)"),
        (lambda: image_embeddings(clip.vision, [np.zeros((0, 8, 3))]), r"`images` 0 has shape"),
        (lambda: image_embeddings(clip.vision, np.zeros((8, 8))), r"`images` has shape \(8, 8\)"),
        (lambda: image_embeddings(clip.vision, [np.zeros((8, 8, 3), np.int64)]), "`images` 0 has int64"),
        (lambda: image_embeddings(clip.vision, 3), "`images` must be an image batch"),
        (lambda: image_embeddings(clip.vision, ["a string"]), "`images` 0 is a str, not an image"),
        (lambda: image_embeddings(clip.vision, [np.array([["a"]])]), "`images` 0 has <U1 pixels"),
    ]
    for call, message in cases:
        with pytest.raises(PulidError, match=message):
            call()


def test_image_errors_are_the_face_pipelines(clip):
    """The CLIP measures and the face pipeline check an image with one function: after the image's name, the
    same words."""
    bad = [np.full((8, 8, 3), np.nan, np.float32), np.full((8, 8, 3), 200.0, np.float32),
           np.zeros((8, 8, 5), np.float32), np.zeros((8, 8, 3), np.int64), torch.zeros(8, 8, 3, dtype=torch.int32),
           "a string"]
    for image in bad:
        with pytest.raises(PulidError) as measured:
            image_embeddings(clip.vision, [image])
        with pytest.raises(PulidError) as encoded:
            to_rgb_uint8(image, image_index=0)
        assert str(measured.value).removeprefix("`images` 0") == str(encoded.value).removeprefix("Image 0")


def test_no_prompt_is_the_one_empty_prompt_error(clip):
    with pytest.raises(PulidError) as caught:
        prompt_adherence(clip, [smooth(64, 64, seed=1)], [])
    assert str(caught.value) == str(empty_prompt())
