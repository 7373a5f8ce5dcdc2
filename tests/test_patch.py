"""The attn2 replace on synthetic q/k/v: identity at weight 0, sigma window, cond/uncond routing,
region masks on odd grids, chaining over foreign replaces, and sharing under deepcopy.

The expected values come from a plain reference written here (per-head softmax attention over
[tokens; zero tokens] projected by the site's K/V weights), computed in float64; only the ortho-mode tests
use pulid.attention.id_attention on materialised zero tokens (itself checked against float64 references in
test_attention.py), run in float64 too, to check what the patch adds: shared store, row layouts and the
zero-token slot.
"""
import copy
import gc
import math
import weakref
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from testkit.numerics import BUDGET, assert_close, error_ratio
from testkit.pack import pack_module

attn2 = pack_module("nodes.attn2")
attention_mod = pack_module("pulid.attention")
IDEmbedding = pack_module("pulid.embedding").IDEmbedding
EmbeddingMismatchError = pack_module("pulid.errors").EmbeddingMismatchError
SITES = pack_module("pulid.sites").SITES
IDKeyValues, IdentityAttention, RegionMask = attn2.IDKeyValues, attn2.IdentityAttention, attn2.RegionMask
SigmaWindow = attn2.SigmaWindow
build_patches, token_grid, id_attention = attn2.build_patches, attn2.token_grid, attention_mod.id_attention

HEADS, WIDTH, DIM, T, NZ = SITES[0].heads, 40, 12, 4, 2  # the first sites' head count, small widths


class FakeModel:
    """What the patch reads of a PulidModel (weakly referenced, as the embeddings' K/V store does)."""

    def __init__(self, kv_weights, version="v1.1"):
        self.kv_weights, self.version, self.path = kv_weights, version, "pulid_test.safetensors"


def plain_attention(q, k, v, heads, attn_precision=None, transformer_options=None):
    b, n, c = q.shape
    d = c // heads
    qh = q.view(b, n, heads, d).transpose(1, 2)
    kh = k.view(b, k.shape[1], heads, d).transpose(1, 2)
    vh = v.view(b, v.shape[1], heads, d).transpose(1, 2)
    w = (qh @ kh.transpose(-1, -2) / d ** 0.5).softmax(-1)
    return (w @ vh).transpose(1, 2).reshape(b, n, c)


def reference_id_term(q, tokens, k_w, v_w, num_zero=NZ):
    padded = torch.cat([tokens, torch.zeros(1, num_zero, tokens.shape[-1], dtype=tokens.dtype)], dim=1)
    id_k = (padded @ k_w.T).expand(q.shape[0], -1, -1)
    id_v = (padded @ v_w.T).expand(q.shape[0], -1, -1)
    return plain_attention(q, id_k, id_v, HEADS)


@pytest.fixture(scope="module")
def parts():
    g = torch.Generator().manual_seed(0)
    return with_embeds(SimpleNamespace(
        cond=torch.randn(1, T, DIM, generator=g), uncond=torch.randn(1, T, DIM, generator=g) * 0.1,
        k_w=torch.randn(WIDTH, DIM, generator=g) * 0.3, v_w=torch.randn(WIDTH, DIM, generator=g),
        q=torch.randn(4, 6, WIDTH, generator=g), k=torch.randn(4, 5, WIDTH, generator=g),
        v=torch.randn(4, 5, WIDTH, generator=g)))


def with_embeds(parts):
    """`parts` plus the IDEmbedding and the one-site PuLID model the patch reads them through."""
    parts.embeds = IDEmbedding(parts.cond, parts.uncond, "v1.1")
    parts.model = FakeModel([(parts.k_w, parts.v_w)])
    return parts


def make(parts, weight=0.7, start=10.0, end=1.0, mask=None, previous=None, ortho="off", num_zero=NZ):
    kv = IDKeyValues(parts.embeds, parts.model, 0, num_zero)
    return IdentityAttention(kv, weight, ortho, SigmaWindow(start, end), plain_attention, mask=mask,
                             previous=previous)


def opts(sigma=5.0, cond_or_uncond=(0, 1), shape=(4, 4, 2, 3)):
    return {"sigmas": torch.tensor([sigma] * 4), "cond_or_uncond": list(cond_or_uncond),
            "n_heads": HEADS, "original_shape": list(shape), "attn_precision": None}


def in_double(parts):
    """The float64 copy of the test tensors that references are computed from."""
    return SimpleNamespace(**{n: getattr(parts, n).double() for n in ("cond", "uncond", "k_w", "v_w", "q", "k", "v")})


def expected(parts, weight, order, q=None, num_zero=NZ):
    """(text attention, text + weight * ID term), in float64."""
    d = in_double(parts)
    q = d.q if q is None else q.double()
    out = plain_attention(q, d.k, d.v, HEADS)
    rows = q.shape[0] // len(order)
    terms = []
    for i, c in enumerate(order):
        tokens = d.uncond if c == 1 else d.cond
        terms.append(reference_id_term(q[i * rows:(i + 1) * rows], tokens, d.k_w, d.v_w, num_zero))
    return out, out + weight * torch.cat(terms)


def test_weight_zero_is_exactly_unpatched(parts):
    out = make(parts, weight=0.0)(parts.q, parts.k, parts.v, opts())
    assert torch.equal(out, plain_attention(parts.q, parts.k, parts.v, HEADS))


@pytest.mark.parametrize("sigma,inside", [(10.0, True), (1.0, True), (5.0, True), (10.5, False), (0.5, False)])
def test_sigma_window(parts, sigma, inside):
    got = make(parts)(parts.q, parts.k, parts.v, opts(sigma=sigma))
    out, with_id = expected(parts, 0.7, (0, 1))
    if inside:
        assert_close(got, with_id)
    else:
        assert torch.equal(got, plain_attention(parts.q, parts.k, parts.v, HEADS))


@pytest.mark.parametrize("order", [(0, 1), (1, 0), (0,), (1, 0, 0, 1)])
def test_cond_uncond_routing(parts, order):
    got = make(parts)(parts.q, parts.k, parts.v, opts(cond_or_uncond=order))
    _, want = expected(parts, 0.7, order)
    assert_close(got, want)


def fresh_embeds(parts):
    """Same values, new tensors and a new model: nothing is projected for them yet."""
    return with_embeds(SimpleNamespace(**{**vars(parts), "cond": parts.cond.clone(), "uncond": parts.uncond.clone()}))


def held_kv(parts, dtype=torch.float32):
    """The K/V set the embeddings hold for `parts.model` (the embeddings' public lookup: a re-projection
    would put a new set in its place)."""
    return parts.embeds.site_keys_values(parts.model, parts.q.device, dtype)


def test_kv_projected_once_per_device_and_dtype(parts):
    parts = fresh_embeds(parts)
    p = make(parts)
    p(parts.q, parts.k, parts.v, opts())
    first = held_kv(parts)
    for _ in range(2):
        p(parts.q, parts.k, parts.v, opts())
    assert held_kv(parts) is first  # cond and uncond in one set, projected once
    assert parts.embeds.cache_info().per_device_dtype == {("cpu", torch.float32): 1}
    p(parts.q.double(), parts.k.double(), parts.v.double(), opts())
    info = parts.embeds.cache_info()
    assert info.per_device_dtype == {("cpu", torch.float32): 1, ("cpu", torch.float64): 1}
    assert info.entries == 2 and info.models == 1 and held_kv(parts) is first


def test_reapply_reuses_projections_for_any_method(parts):
    """Zero tokens are a count, not part of the projection: another num_zero or ortho projects nothing."""
    parts = fresh_embeds(parts)
    first = make(parts, weight=0.7)
    first(parts.q, parts.k, parts.v, opts())
    projected = held_kv(parts)
    again = make(parts, weight=1.3, start=8.0, end=2.0)  # another slider setting, same embeds and model
    out = again(parts.q, parts.k, parts.v, opts())
    assert parts.embeds.cache_info().entries == 1 and held_kv(parts) is projected
    assert_close(out, expected(parts, 1.3, (0, 1))[1])
    out = make(parts, num_zero=NZ + 3)(parts.q, parts.k, parts.v, opts())
    assert parts.embeds.cache_info().entries == 1 and held_kv(parts) is projected
    assert_close(out, expected(parts, 0.7, (0, 1), num_zero=NZ + 3)[1])


@pytest.mark.parametrize("ortho", ["off", "v1", "v2"])
def test_layouts_are_views_of_the_shared_store_except_unusual_orders(parts, ortho):
    p = make(parts, ortho=ortho)
    dtype = torch.float32
    store_k, store_v = parts.embeds.site_keys_values(parts.model, parts.q.device, dtype)[0]
    for chunks in ((1, 0), (0,), (1,)):  # uncond+cond as ComfyUI batches them, or one kind alone
        layout = p.kv.layout(chunks, parts.q.device, dtype)
        keys, values = layout.keys, layout.values
        assert keys.untyped_storage().data_ptr() == store_k.untyped_storage().data_ptr()
        assert values.untyped_storage().data_ptr() == store_v.untyped_storage().data_ptr()
    reordered = p.kv.layout((0, 1), parts.q.device, dtype)
    assert reordered is p.kv.layout((0, 1), parts.q.device, dtype)  # kept, not rebuilt per call
    assert torch.equal(reordered.keys, torch.cat([store_k[HEADS:], store_k[:HEADS]]))


def test_projections_of_a_model_that_went_are_dropped(parts):
    """The K/V live on the embeddings, per PuLID model: once that model is gone (another file loaded),
    the next use of the embeddings drops its K/V."""
    parts = fresh_embeds(parts)
    keys = weakref.ref(make(parts).kv.layout((1, 0), parts.q.device, parts.q.dtype).keys)
    assert parts.embeds.cache_info().entries == 1
    parts.model = FakeModel([(parts.k_w.clone(), parts.v_w.clone())])
    gc.collect()
    make(parts).kv.layout((1, 0), parts.q.device, parts.q.dtype)
    gc.collect()
    info = parts.embeds.cache_info()
    assert info.entries == 1 and info.models == 1 and keys() is None


def test_cache_info_counts_what_the_embeddings_hold(parts):
    parts = fresh_embeds(parts)
    assert parts.embeds.cache_info() == (0, 0, {}, 0)
    keys, values = held_kv(parts)[0]
    other = FakeModel([(parts.k_w.clone(), parts.v_w.clone())])
    parts.embeds.site_keys_values(other, parts.q.device, torch.float64)
    info = parts.embeds.cache_info()
    assert (info.entries, info.models) == (2, 2)
    assert info.per_device_dtype == {("cpu", torch.float32): 1, ("cpu", torch.float64): 1}
    assert info.nbytes >= 3 * (keys.nbytes + values.nbytes)  # float32 set, float64 set of twice the size


def test_projected_kv_is_freed_with_its_embeddings_while_the_model_lives(parts):
    """The K weights outlive every embedding; nothing tied to them may keep old K/V alive."""
    parts = fresh_embeds(parts)
    keys = make(parts).kv.layout((1, 0), parts.q.device, parts.q.dtype).keys
    alive = weakref.ref(keys)
    del parts, keys
    gc.collect()
    assert alive() is None


def test_projection_reuses_one_float32_scratch_for_half_weights(parts, monkeypatch):
    """All sites project together on first use: one float32 scratch for the fp16 weights, cond and
    uncond in one batch per weight pair, and the same numbers as a plain float32 projection."""
    half = SimpleNamespace(**{**vars(fresh_embeds(parts)), "k_w": parts.k_w.half(), "v_w": parts.v_w.half()})
    scratches = []
    real = attention_mod.project_id_tokens
    monkeypatch.setattr(attention_mod, "project_id_tokens",
                        lambda *a, **kw: scratches.append(kw["scratch"]) or real(*a, **kw))
    half.model = FakeModel([(half.k_w, half.v_w), (half.k_w * 2, half.v_w)])
    sites = [IDKeyValues(half.embeds, half.model, i, NZ) for i in range(2)]
    layout = sites[1].layout((1, 0), parts.q.device, torch.float32)  # the second site asks first
    keys, values = layout.keys, layout.values
    assert len(scratches) == 2 and scratches[0] is scratches[1] and scratches[0].dtype == torch.float32
    sites[0].layout((1, 0), parts.q.device, torch.float32)
    assert len(scratches) == 2
    d = WIDTH // HEADS
    for g, tokens in enumerate((half.uncond, half.cond)):  # uncond rows first, as ComfyUI batches them
        k = (tokens.double() @ (half.k_w * 2).double().T)[0].view(T, HEADS, d).transpose(0, 1)
        v = (tokens.double() @ half.v_w.double().T)[0].view(T, HEADS, d).transpose(0, 1)
        heads = slice(g * HEADS, (g + 1) * HEADS)
        assert_close(keys[heads, :T], k)
        assert_close(values[heads, :T], v)
        assert torch.all(keys[heads, T] == 0) and torch.all(values[heads, T] == 0)  # the zero-token slot
    # the zero-token slot holds log(num_zero) rounded once to float32
    once = pytest.approx(math.log(NZ), rel=torch.finfo(torch.float32).eps)
    assert layout.bias.flatten().tolist() == [0.0] * T + [once]


@pytest.mark.parametrize("latent,tokens,grid", [
    ((128, 128), 64 * 64, (64, 64)), ((128, 128), 32 * 32, (32, 32)),
    ((125, 75), 63 * 38, (63, 38)), ((125, 75), 32 * 19, (32, 19)),
    ((97, 131), 97 * 131, (97, 131)), ((97, 131), 25 * 33, (25, 33))])
def test_token_grid_odd_sizes(latent, tokens, grid):
    assert token_grid(latent, tokens) == grid


def test_mask_on_odd_grid_touches_id_term_only(parts):
    h, w = 5, 3  # latent 9x5 -> grid ceil(9/2) x ceil(5/2) = 5 x 3 at the first downsampled level
    g = torch.Generator().manual_seed(1)
    q = torch.randn(4, h * w, WIDTH, generator=g)
    mask = torch.zeros(1, 45, 25)
    mask[:, :20] = 1.0  # top part of the picture
    got = make(parts, mask=RegionMask(mask))(q, parts.k, parts.v, opts(shape=(4, 4, 9, 5)))
    out, with_id = expected(parts, 0.7, (0, 1), q=q)
    m = F.interpolate(mask[:, None], size=(h, w), mode="bilinear", align_corners=False).reshape(1, h * w, 1)
    assert_close(got, out + (with_id - out) * m.double())
    bottom = m[0, :, 0] == 0
    assert bottom.any() and torch.equal(got[:, bottom], plain_attention(q, parts.k, parts.v, HEADS)[:, bottom])


def test_per_image_mask_follows_rows(parts):
    q = parts.q  # 4 rows = [cond a, cond b, uncond a, uncond b]
    mask = torch.stack([torch.ones(4, 6), torch.zeros(4, 6)])  # image a: everywhere, image b: nowhere
    got = make(parts, mask=RegionMask(mask))(q, parts.k, parts.v, opts(shape=(4, 4, 2, 3)))
    out, with_id = expected(parts, 0.7, (0, 1))
    assert_close(got[[0, 2]], with_id[[0, 2]])
    assert torch.equal(got[[1, 3]], plain_attention(q, parts.k, parts.v, HEADS)[[1, 3]])


def test_chains_over_foreign_replace(parts):
    def foreign(q, k, v, extra_options):
        return plain_attention(q, k, v, HEADS) * 2.0 + 1.0

    got = make(parts, previous=foreign)(parts.q, parts.k, parts.v, opts())
    out, with_id = expected(parts, 0.7, (0, 1))
    d = in_double(parts)
    assert_close(got, foreign(d.q, d.k, d.v, None) + (with_id - out))


def test_two_pulid_applies_with_complementary_masks(parts):
    h, w = 2, 3
    left = torch.zeros(1, 2, 3)
    left[..., :1] = 1.0
    first = make(parts, weight=0.5, mask=RegionMask(left))
    second = make(parts, weight=1.5, mask=RegionMask(1.0 - left), previous=first)
    got = second(parts.q, parts.k, parts.v, opts(shape=(4, 4, h, w)))
    out, with_id = expected(parts, 1.0, (0, 1))
    term = with_id - out
    m = left.reshape(1, h * w, 1)
    assert_close(got, out + term * (0.5 * m.double() + 1.5 * (1 - m.double())))


def fake_model(version="v1.1"):
    g = torch.Generator().manual_seed(2)
    kv = [(torch.randn(s.width // 64, DIM, generator=g), torch.randn(s.width // 64, DIM, generator=g))
          for s in SITES]
    return FakeModel(kv, version)


def test_build_patches_covers_all_sites_and_chains(parts):
    embeds = IDEmbedding(parts.cond, parts.uncond, "v1.1")
    foreign = object()
    existing = {attn2.SITE_KEYS[3]: foreign}
    patches = build_patches(fake_model(), embeds, weight=1.0, num_zero=NZ, ortho="off",
                            window=SigmaWindow(1e9, 0.0), attention=plain_attention, existing=existing)
    assert list(patches) == list(attn2.SITE_KEYS) and len(set(patches)) == 70
    assert patches[attn2.SITE_KEYS[3]].previous is foreign
    assert all(p.previous is None for key, p in patches.items() if key != attn2.SITE_KEYS[3])


def test_comfyui_site_keys():
    """ComfyUI's names for the checkpoint's sites: down path, up path, then the middle block (id 0)."""
    expected = (
        [("input", b, j) for b in (4, 5) for j in range(2)]
        + [("input", b, j) for b in (7, 8) for j in range(10)]
        + [("output", b, j) for b in (0, 1, 2) for j in range(10)]
        + [("output", b, j) for b in (3, 4, 5) for j in range(2)]
        + [("middle", 0, j) for j in range(10)]
    )
    assert list(attn2.SITE_KEYS) == expected
    site = next(s for s in SITES if s.diffusers_name == "up_blocks.1.attentions.0.transformer_blocks.1.attn2")
    assert attn2.site_key(site) == ("output", 3, 1)


def test_build_patches_rejects_other_version(parts):
    embeds = IDEmbedding(parts.cond, parts.uncond, "v1")
    with pytest.raises(EmbeddingMismatchError, match="v1.1"):
        build_patches(fake_model("v1.1"), embeds, weight=1.0, num_zero=NZ, ortho="off",
                      window=SigmaWindow(1e9, 0.0), attention=plain_attention)


def test_deepcopy_shares_tensors(parts):
    """A clone of a patched model copies no tensor: ModelPatcher.clone deep-copies model_options, and the
    copied patch still reads the same embeddings, K/V layouts and mask (tests/host checks the real clone)."""
    p = make(parts, mask=RegionMask(torch.ones(1, 4, 4)))
    p(parts.q, parts.k, parts.v, opts())  # fill the K/V cache
    options = {"transformer_options": {"patches_replace": {"attn2": {("input", 4, 0): p}}}}
    clone = copy.deepcopy(options)["transformer_options"]["patches_replace"]["attn2"][("input", 4, 0)]
    assert clone.kv.model is p.kv.model and clone.kv.embeds is p.kv.embeds
    assert clone.kv.layout((0, 1), parts.q.device, parts.q.dtype) is p.kv.layout((0, 1), parts.q.device, parts.q.dtype)
    assert clone.mask.mask is p.mask.mask
    clone.weight = 0.0  # a copy can be changed without touching the original
    assert p.weight == 0.7


def test_sigma_is_read_once_per_step_tensor():
    sigmas = torch.tensor([5.0, 5.0])
    assert attn2.current_sigma(sigmas) == 5.0
    sigmas.fill_(1.0)  # the same tensor object again: the cached value is used, the tensor is not read
    assert attn2.current_sigma(sigmas) == 5.0
    assert attn2.current_sigma(torch.tensor([2.5])) == 2.5  # the next step's tensor is read


@pytest.mark.parametrize("ortho", ["v1", "v2"])
@pytest.mark.parametrize("order", [(1, 0), (0, 1, 1, 0)])
def test_ortho_routing_and_mask_match_the_plain_formula(parts, ortho, order):
    """Through the patch (shared store, row layouts, zero-token slot) = id_attention on the routed rows
    with the zero tokens materialised."""
    mask = torch.zeros(1, 2, 3)
    mask[..., 1:] = 1.0
    got = make(parts, ortho=ortho, mask=RegionMask(mask))(parts.q, parts.k, parts.v,
                                                          opts(cond_or_uncond=order, shape=(4, 4, 2, 3)))
    d = in_double(parts)
    out = plain_attention(d.q, d.k, d.v, HEADS)
    full = routed_id_attention(d, d.q, out, ortho, None, 0.7, order)
    assert_close(got, out + (full - out) * mask.double().reshape(1, 6, 1))


def routed_id_attention(parts, q, out, ortho, mask, weight, order):
    """id_attention (zero tokens materialised) with each row block seeing its own tokens, as the patch routes."""
    rows = q.shape[0] // len(order)
    padded = {}
    for c, tokens in ((0, parts.cond), (1, parts.uncond)):
        tokens = torch.cat([tokens, tokens.new_zeros(1, NZ, tokens.shape[-1])], dim=1)
        padded[c] = (tokens @ parts.k_w.T, tokens @ parts.v_w.T)
    id_k = torch.cat([padded[c][0].expand(rows, -1, -1) for c in order])
    id_v = torch.cat([padded[c][1].expand(rows, -1, -1) for c in order])
    return id_attention(q, out, id_k, id_v, HEADS, weight, ortho, mask=mask)


@pytest.mark.parametrize("orthos", [("v2", "v1"), ("v1", "v2"), ("v2", "v2")])
def test_two_identities_each_project_against_the_text_alone(parts, orthos):
    """A second identity chained over ours: its ortho projects against the text attention, not against
    text + the first identity's term, and the text attention runs once."""
    left = torch.zeros(1, 2, 3)
    left[..., :1] = 1.0
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return plain_attention(*args, **kwargs)

    first = IdentityAttention(IDKeyValues(parts.embeds, parts.model, 0, NZ), 0.6, orthos[0], SigmaWindow(10.0, 1.0), counted,
                              mask=RegionMask(left))
    second = IdentityAttention(IDKeyValues(parts.embeds, parts.model, 0, NZ), 1.2, orthos[1], SigmaWindow(10.0, 1.0), counted,
                               mask=RegionMask(1.0 - left), previous=first)
    order = (1, 0)
    got = second(parts.q, parts.k, parts.v, opts(cond_or_uncond=order, shape=(4, 4, 2, 3)))
    assert len(calls) == 1
    d = in_double(parts)
    text = plain_attention(d.q, d.k, d.v, HEADS)
    m = left.double().reshape(1, 6, 1)
    one = routed_id_attention(d, d.q, text, orthos[0], m.expand(4, -1, -1), 0.6, order) - text
    two = routed_id_attention(d, d.q, text, orthos[1], (1 - m).expand(4, -1, -1), 1.2, order) - text
    assert_close(got, text + one + two)
    # what projecting against the first identity's output would give differs: the test can fail
    leaky = routed_id_attention(d, d.q, text + one, orthos[1], (1 - m).expand(4, -1, -1), 1.2, order)
    assert error_ratio(got, leaky) > BUDGET["layer"]


class ProtocolReplace:
    """A replace as IPAdapter_plus / InstantID / cubiq's PuLID build theirs: text attention, then every
    added callback's term inside its sigma window (written here from the protocol, not copied)."""

    def __init__(self, callback, **kwargs):
        self.callbacks = [(callback, kwargs)]

    def add(self, callback, **kwargs):
        self.callbacks.append((callback, kwargs))

    def __call__(self, q, k, v, extra_options):
        out = plain_attention(q, k, v, extra_options["n_heads"])
        sigma = float(extra_options["sigmas"][0]) if "sigmas" in extra_options else 1e9
        for callback, kwargs in self.callbacks:
            if kwargs["sigma_end"] <= sigma <= kwargs["sigma_start"]:
                out = out + callback(out, q, k, v, extra_options, **kwargs)
        return out


def ip_term(out, q, k, v, extra_options, scale=0.0, **kwargs):
    """A stand-in for IP-Adapter's term: anything that depends on q and the running output."""
    return scale * torch.tanh(q) + 0.01 * out


def test_foreign_pack_adds_to_our_replace(parts):
    """Apply PuLID, then a pack that finds our replace at the site and calls .add() on it."""
    ours = make(parts)
    ours.add(ip_term, scale=0.3, sigma_start=10.0, sigma_end=1.0)
    got = ours(parts.q, parts.k, parts.v, opts())
    _, with_id = expected(parts, 0.7, (0, 1))
    assert_close(got, with_id + ip_term(with_id, parts.q.double(), None, None, None, scale=0.3))
    outside = ours(parts.q, parts.k, parts.v, opts(sigma=0.5))  # both windows closed
    assert torch.equal(outside, plain_attention(parts.q, parts.k, parts.v, HEADS))


def test_our_replace_over_a_protocol_replace(parts):
    """The other order: their replace is already at the site; ours calls it for the text attention."""
    theirs = ProtocolReplace(ip_term, scale=0.3, sigma_start=10.0, sigma_end=1.0)
    got = make(parts, previous=theirs)(parts.q, parts.k, parts.v, opts())
    out, with_id = expected(parts, 0.7, (0, 1))
    with_ip = out + ip_term(out, parts.q.double(), None, None, None, scale=0.3)
    assert_close(got, with_ip + (with_id - out))


def test_add_leaves_earlier_copies_alone(parts):
    ours = make(parts)
    clone = copy.deepcopy({"r": ours})["r"]
    clone.add(ip_term, scale=0.3, sigma_start=10.0, sigma_end=1.0)
    assert ours.added == () and len(clone.added) == 1


class Sampling:
    """percent_to_sigma of a model sampling: sigma = scale * (1 - percent), 0 and "infinite" at the ends."""

    def __init__(self, scale):
        self.scale = scale

    def percent_to_sigma(self, percent):
        return 999999999.9 if percent <= 0 else 0.0 if percent >= 1 else self.scale * (1 - percent)


def test_window_is_resolved_again_for_the_model_that_is_sampled(parts):
    """start_at/end_at are fractions; a later ModelSampling change (resolve) moves the sigmas, and every
    copy of the patch (ModelPatcher.clone deep-copies) sees it."""
    window = SigmaWindow.from_fractions(0.5, 1.0, Sampling(10.0))
    patch = IdentityAttention(IDKeyValues(parts.embeds, parts.model, 0, NZ), 0.7, "off", window, plain_attention)
    clone = copy.deepcopy({"p": patch})["p"]
    assert clone.window is window
    assert patch.active(opts(sigma=4.0)) and not patch.active(opts(sigma=6.0))
    window.resolve(Sampling(20.0))  # the sampled model's sampling: 0.5 of the schedule is now sigma 10
    assert clone.active(opts(sigma=6.0)) and not clone.active(opts(sigma=11.0))


class LinearSampling:
    """A model sampling whose sigma falls linearly from 10 at fraction 0 to 0 at fraction 1."""

    @staticmethod
    def percent_to_sigma(percent):
        return 10.0 * (1.0 - percent)


def test_window_missed_when_the_sampled_steps_start_after_end_at():
    """At denoise 0.5 a sampler's sigmas start half way down the schedule (5 here): a window ending at 0.4 (sigma 6)
    misses every step; one ending at 0.6 (sigma 4) holds the first; the last sigma (where sampling ends) is no step."""
    sampled = [5.0, 2.5, 0.0]
    early = SigmaWindow.from_fractions(0.0, 0.4, LinearSampling())
    assert early.missed_by(sampled) and not early.missed_by([9.0, 5.0, 0.0])
    assert not SigmaWindow.from_fractions(0.0, 0.6, LinearSampling()).missed_by(sampled)
    assert SigmaWindow.from_fractions(0.9, 1.0, LinearSampling()).missed_by([5.0, 2.5, 0.5])  # ends before start_at
    assert not early.missed_by([0.0])  # no step at all: nothing to warn about
    text = early.missed_text(sampled, LinearSampling())
    assert "end_at 0.4 misses every sampled step" in text and "first step is at 0.50 of the schedule" in text
    assert text.endswith("Raise end_at above 0.50.")
