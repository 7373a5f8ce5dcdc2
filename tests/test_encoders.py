"""v1 MLP encoder and v1.1 IDFormer against plain functional references over the same official-named weights."""
import pytest
import torch
import torch.nn.functional as F

from testkit import make_pulid
from pulid.encoder_v1 import IDEncoder
from pulid.idformer import IDFormer
from testkit.numerics import assert_close


def build(cls, state):
    with torch.device("meta"):
        module = cls()
    module.load_state_dict(state, strict=True, assign=True)  # strict: names must be the official ones
    return module.eval()


@pytest.fixture(scope="module")
def v1():
    state = make_pulid.encoder_state_dict("v1", seed=3)
    return state, build(IDEncoder, state)


@pytest.fixture(scope="module")
def v11():
    state = make_pulid.encoder_state_dict("v1.1", seed=3)
    return state, build(IDFormer, state)


def inputs(n=2, faces=1, seed=0, tokens=33):
    """Random face inputs; real EVA-CLIP gives 577 tokens per face, fewer keep the test fast (any count works)."""
    g = torch.Generator().manual_seed(seed)
    id_cond = torch.randn(n, faces, 1280, generator=g) if faces > 1 else torch.randn(n, 1280, generator=g)
    hidden = [torch.randn(n, tokens * faces, 1024, generator=g) for _ in range(5)]
    return id_cond, hidden


def double(state, id_cond, hidden):
    """State and inputs in float64: the references run there, so only the module's float32 rounding is tested."""
    return {k: v.double() for k, v in state.items()}, id_cond.double(), [h.double() for h in hidden]


def ref_mlp(sd, prefix, x):
    """Linear, LayerNorm(eps 1e-5), LeakyReLU(0.01), twice, then Linear."""
    for lin, norm in ((0, 1), (3, 4)):
        x = x @ sd[f"{prefix}.{lin}.weight"].T + sd[f"{prefix}.{lin}.bias"]
        x = F.layer_norm(x, x.shape[-1:], sd[f"{prefix}.{norm}.weight"], sd[f"{prefix}.{norm}.bias"], eps=1e-5)
        x = torch.where(x >= 0, x, 0.01 * x)
    return x @ sd[f"{prefix}.6.weight"].T + sd[f"{prefix}.6.bias"]


def ref_v1(sd, id_cond, hidden):
    tokens = list(ref_mlp(sd, "body", id_cond).reshape(-1, 5, 2048).unbind(1))
    for i, h in enumerate(hidden):
        cls_tok = ref_mlp(sd, f"mapping_{i}", h[:, 0])
        patch = ref_mlp(sd, f"mapping_patch_{i}", h[:, 1:]).mean(dim=1)
        tokens.append(cls_tok + patch)
    return torch.stack(tokens, dim=1)


def ref_idformer(sd, id_cond, hidden):
    n = id_cond.shape[0]
    x = ref_mlp(sd, "id_embedding_mapping", id_cond).reshape(n, -1, 1024)
    lat = torch.cat([sd["latents"].repeat(n, 1, 1), x], dim=1)
    for i in range(5):
        ctx = torch.cat([x, ref_mlp(sd, f"mapping_{i}", hidden[i])], dim=1)
        for layer in (2 * i, 2 * i + 1):
            p = f"layers.{layer}.0."
            c = F.layer_norm(ctx, (1024,), sd[p + "norm1.weight"], sd[p + "norm1.bias"])
            l = F.layer_norm(lat, (1024,), sd[p + "norm2.weight"], sd[p + "norm2.bias"])
            q = l @ sd[p + "to_q.weight"].T
            kv = torch.cat([c, l], dim=1) @ sd[p + "to_kv.weight"].T
            k, v = kv[..., :1024], kv[..., 1024:]
            q, k, v = (t.reshape(n, t.shape[1], 16, 64) for t in (q, k, v))
            w = torch.softmax(torch.einsum("bihd,bjhd->bhij", q, k) / 8.0, dim=-1)
            att = torch.einsum("bhij,bjhd->bihd", w, v).reshape(n, -1, 1024)
            lat = lat + att @ sd[p + "to_out.weight"].T
            f = f"layers.{layer}.1."
            y = F.layer_norm(lat, (1024,), sd[f + "0.weight"], sd[f + "0.bias"])
            y = F.gelu(y @ sd[f + "1.weight"].T) @ sd[f + "3.weight"].T
            lat = lat + y
    return lat[:, :32] @ sd["proj_out"]


def test_v1_encoder_matches_reference(v1):
    state, enc = v1
    id_cond, hidden = inputs(n=2)
    with torch.no_grad():
        got = enc(id_cond, hidden)
        want = ref_v1(*double(state, id_cond, hidden))
    assert got.shape == (2, 10, 2048) and enc.num_tokens == 10
    assert_close(got, want, "network")


@pytest.mark.parametrize("faces", [1, 2])
def test_idformer_matches_reference(v11, faces):
    state, enc = v11
    id_cond, hidden = inputs(n=2 if faces == 1 else 1, faces=faces, seed=faces)
    with torch.no_grad():
        got = enc(id_cond, hidden)
        want = ref_idformer(*double(state, id_cond, hidden))
    assert got.shape == (id_cond.shape[0], 32, 2048) and enc.num_tokens == 32
    assert_close(got, want, "network")


def test_half_encoder_accepts_float32_inputs(v1):
    state, _ = v1
    half = {k: v.half() for k, v in state.items()}
    enc = build(IDEncoder, half)
    id_cond, hidden = inputs(n=1)
    with torch.no_grad():
        got = enc(id_cond, hidden)
    assert got.dtype == torch.float16
    assert_close(got, ref_v1(*double(half, id_cond, hidden)), "network")
