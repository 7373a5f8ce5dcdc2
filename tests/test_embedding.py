"""encode_identity multi-image modes against the official definitions, noise, and the embedding file format."""
import copy

import pytest
import torch

from testkit import make_pulid
from pulid.checkpoint import PulidModel
from pulid.embedding import IDEmbedding, encode_identity
from pulid.encoder_v1 import IDEncoder
from pulid.errors import EmbeddingMismatchError, PulidError, PulidFormatError
from pulid.idformer import IDFormer
from testkit.numerics import assert_close

TOKENS = 33  # real EVA-CLIP hidden states have 577 tokens; the modes do not depend on the count


def make_model(version):
    cls = {"v1": IDEncoder, "v1.1": IDFormer}[version]
    with torch.device("meta"):
        encoder = cls()
    encoder.load_state_dict(make_pulid.encoder_state_dict(version, seed=3), assign=True)
    return PulidModel(version, encoder.eval(), [], "/models/pulid/test.bin", "official", encoder.num_tokens, torch.float16)


@pytest.fixture(scope="module")
def v1():
    return make_model("v1")


@pytest.fixture(scope="module")
def v11():
    return make_model("v1.1")


def faces(count, seed=0):
    g = torch.Generator().manual_seed(seed)
    conds = [torch.randn(1, 1280, generator=g) for _ in range(count)]
    hiddens = [[torch.randn(1, TOKENS, 1024, generator=g) for _ in range(5)] for _ in range(count)]
    return conds, hiddens


_DOUBLE = {}  # id(model) -> (model, its encoder in float64); the model is kept so its id is never reused


def run(model, id_cond, hidden):
    """The model's encoder in float64 on the same inputs: the reference for encode_identity's float32."""
    if id(model) not in _DOUBLE:
        _DOUBLE[id(model)] = model, copy.deepcopy(model.encoder).double()
    with torch.no_grad():
        return _DOUBLE[id(model)][1](id_cond.double(), [h.double() for h in hidden])


def zeros_like(cond, hidden):
    return torch.zeros_like(cond), [torch.zeros_like(h) for h in hidden]


def test_v1_concat_is_the_official_id_mix_off(v1):
    conds, hiddens = faces(3)
    emb = encode_identity(v1, conds, hiddens)  # auto = concat
    per_face = [run(v1, c, h) for c, h in zip(conds, hiddens)]
    blank = run(v1, *zeros_like(conds[0], hiddens[0]))
    want = torch.cat([per_face[0], per_face[1][:, :5], per_face[2][:, :5]], dim=1)
    assert emb.cond.shape == (1, 20, 2048) and emb.uncond.shape == (1, 20, 2048)
    assert_close(emb.cond, want, "network")
    assert_close(emb.uncond, torch.cat([blank, blank[:, :5], blank[:, :5]], dim=1), "network")
    assert emb.cond.dtype == torch.float32 and emb.cond.device.type == "cpu"
    assert emb.version == "v1" and emb.metadata["multi_image"] == "concat" and emb.metadata["source_model"] == "test.bin"


def test_mean_mode(v1):
    # Same code path for v1.1 (only the accepted mode names differ, see test_wrong_mode_for_version).
    conds, hiddens = faces(2, seed=1)
    emb = encode_identity(v1, conds, hiddens, multi_image="mean")
    want = (run(v1, conds[0], hiddens[0]) + run(v1, conds[1], hiddens[1])) / 2
    assert_close(emb.cond, want, "network")
    assert_close(emb.uncond, run(v1, *zeros_like(conds[0], hiddens[0])), "network")
    assert emb.cond.shape == (1, 10, 2048)


def test_v11_stack_is_one_idformer_pass(v11):
    conds, hiddens = faces(2, seed=2)
    emb = encode_identity(v11, conds, hiddens)  # auto = stack
    stacked = torch.stack([conds[0], conds[1]], dim=1)  # [1, 2, 1280]
    joined = [torch.cat([hiddens[0][i], hiddens[1][i]], dim=1) for i in range(5)]
    assert_close(emb.cond, run(v11, stacked, joined), "network")
    # Official v1.1: one all-zero input shaped like the first face.
    assert_close(emb.uncond, run(v11, *zeros_like(conds[0], hiddens[0])), "network")
    assert emb.cond.shape == (1, 32, 2048) and emb.metadata["multi_image"] == "stack"


def test_wrong_mode_for_version(v1, v11):
    conds, hiddens = faces(1)
    with pytest.raises(PulidError, match="concat or mean"):
        encode_identity(v1, conds, hiddens, multi_image="stack")
    with pytest.raises(PulidError, match="stack or mean"):
        encode_identity(v11, conds, hiddens, multi_image="concat")


def test_noise_is_seeded_uniform(v1):
    conds, hiddens = faces(1)
    emb = encode_identity(v1, conds, hiddens, noise=0.3, seed=7)
    g = torch.Generator().manual_seed(7)  # documented draw order: id_cond, then the 5 hidden layers
    noisy_cond = torch.rand(1, 1280, generator=g) * 0.3
    noisy_hidden = [torch.rand(1, TOKENS, 1024, generator=g) * 0.3 for _ in range(5)]
    assert all(0 <= t.min() and t.max() < 0.3 for t in [noisy_cond, *noisy_hidden])
    assert_close(emb.uncond, run(v1, noisy_cond, noisy_hidden), "network")
    again = encode_identity(v1, conds, hiddens, noise=0.3, seed=7)
    other = encode_identity(v1, conds, hiddens, noise=0.3, seed=8)
    assert torch.equal(again.uncond, emb.uncond) and not torch.equal(other.uncond, emb.uncond)
    assert_close(emb.cond, run(v1, conds[0], hiddens[0]), "network")


def test_save_load_round_trip_and_version_check(tmp_path):
    g = torch.Generator().manual_seed(0)
    emb = IDEmbedding(torch.randn(1, 32, 2048, generator=g), torch.randn(1, 32, 2048, generator=g), "v1.1",
                      {"multi_image": "stack", "source_model": "pulid_v1.1.safetensors"})
    path = tmp_path / "face.safetensors"
    emb.save(path)
    back = IDEmbedding.load(path, expected_version="v1.1")
    assert torch.equal(back.cond, emb.cond) and torch.equal(back.uncond, emb.uncond)
    assert back.version == "v1.1" and back.metadata == emb.metadata
    with pytest.raises(EmbeddingMismatchError, match="PuLID v1.1 cannot drive a v1 model: re-encode"):
        IDEmbedding.load(path, expected_version="v1")


def test_foreign_files_are_rejected(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "lora.safetensors"
    save_file({"cond": torch.zeros(1, 10, 2048), "uncond": torch.zeros(1, 10, 2048)}, str(other))
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    for path in (other, text, tmp_path / "missing.safetensors"):
        with pytest.raises(PulidFormatError, match="not a PuLID ID embedding") as err:
            IDEmbedding.load(path)
        assert str(path) in str(err.value)


def test_zero_uncond_is_computed_once_per_encoder_and_shape():
    model = make_model("v1.1")
    expected = run(model, *zeros_like(*[x[0] for x in faces(1)]))
    calls = []
    model.encoder.register_forward_hook(lambda module, args, out: calls.append(args[0].abs().sum().item()))
    first = encode_identity(model, *faces(1, seed=1))
    second = encode_identity(model, *faces(1, seed=2))
    assert len(calls) == 3  # cond, uncond, cond: the second face reuses the zero uncond
    assert sum(c == 0 for c in calls) == 1
    assert_close(second.uncond, expected, "network")
    assert torch.equal(first.uncond, second.uncond)
    encode_identity(model, *faces(1, seed=3), noise=0.1)  # noise: computed, never cached
    assert len(calls) == 5
