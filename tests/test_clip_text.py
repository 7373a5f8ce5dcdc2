"""EVA02-CLIP text tower: the embeddings of the plain CLIP text forward, CLIP's tokens, clear errors."""
import math
import re

import pytest
import torch
import torch.nn.functional as F

from testkit import make_face_models as mfm
from pulid.catalog import EVA_CLIP
from pulid.clip_text import (CONTEXT_LENGTH, PromptTokens, clean_prompt, empty_prompt, load_clip_text, prompt_notes,
                              tokenize)
from pulid.errors import ModelFileError, PulidError, PulidFormatError
from testkit.numerics import BUDGET, assert_close, error_ratio

VISION = dict(embed_dim=128, depth=20)
PROMPTS = ["a photo of a woman in a red hat", "portrait, (smiling:1.2), [studio light]", "x"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip_text")
    return {
        "eva-clip": mfm.write_eva_clip_checkpoint(root / "EVA02_CLIP_L_336_psz14_s6B.pt", "eva-clip", **VISION,
                                                  nested=True),
        "open_clip": mfm.write_eva_clip_checkpoint(root / "open_clip_pytorch_model.bin", "open_clip", **VISION),
        "timm": mfm.write_eva_clip_checkpoint(root / "model.safetensors", "timm", **VISION),
        "stub": mfm.write_eva_clip_checkpoint(root / "stub.pt", "eva-clip", **VISION, text="stub"),
        "none": mfm.write_eva_clip_checkpoint(root / "vision_only.pt", "open_clip", **VISION, text="none"),
    }


@pytest.fixture(scope="module")
def model(files):
    return load_clip_text(files["eva-clip"])


def reference_encode(sd, ids):
    """The CLIP text forward written plainly on the checkpoint's tensors (float64): token + position
    embeddings, pre-norm causal self-attention blocks with a GELU MLP, final norm, the end token's state
    (the highest id, 49407) projected, unit length."""
    sd = {k[len("text."):]: v.double() for k, v in sd.items() if k.startswith("text.")}
    ln = lambda t, name: F.layer_norm(t, t.shape[-1:], sd[name + ".weight"], sd[name + ".bias"], 1e-5)
    x = sd["token_embedding.weight"][ids] + sd["positional_embedding"]
    n, length, width = x.shape
    heads = width // 64
    causal = torch.full((length, length), float("-inf"), dtype=torch.float64).triu(1)
    layers = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"transformer\.resblocks\.(\d+)\.", k)))
    for i in range(layers):
        p = f"transformer.resblocks.{i}."
        h = ln(x, p + "ln_1")
        q, k, v = (h @ sd[p + "attn.in_proj_weight"].T + sd[p + "attn.in_proj_bias"]).chunk(3, dim=-1)
        q, k, v = (t.reshape(n, length, heads, 64).transpose(1, 2) for t in (q, k, v))
        attn = (q @ k.transpose(-1, -2) / math.sqrt(64) + causal).softmax(-1)
        out = (attn @ v).transpose(1, 2).reshape(n, length, width)
        x = x + out @ sd[p + "attn.out_proj.weight"].T + sd[p + "attn.out_proj.bias"]
        h = ln(x, p + "ln_2")
        h = F.gelu(h @ sd[p + "mlp.c_fc.weight"].T + sd[p + "mlp.c_fc.bias"])
        x = x + h @ sd[p + "mlp.c_proj.weight"].T + sd[p + "mlp.c_proj.bias"]
    x = ln(x, "ln_final")
    pooled = x[torch.arange(n), ids.argmax(-1)]
    return F.normalize(pooled @ sd["text_projection"], dim=-1)


def test_embeddings_match_plain_reference(model):
    sd = mfm.clip_text_state_dict(**mfm.TEXT_SMALL)
    ids, _ = tokenize(PROMPTS)
    with torch.no_grad():
        want = reference_encode(sd, ids)
    got, infos = model.encode(PROMPTS)
    assert got.dtype == torch.float32 and got.shape == (3, 768)
    assert_close(got, want, "network")
    assert [i.prompt for i in infos] == PROMPTS
    # the comparison can fail: each prompt's embedding is its own, not one shared vector
    assert error_ratio(got[0], want[1]) > BUDGET["network"]


def test_open_clip_layout_gives_the_same_embeddings(files, model):
    other = load_clip_text(files["open_clip"])
    assert torch.equal(other.encode(PROMPTS)[0], model.encode(PROMPTS)[0])


def test_generated_keys_are_the_released_layout():
    """The real EVA02_CLIP_L_336_psz14_s6B.pt has 150 text.* / logit_scale keys (12 layers); open_clip's
    EVA02-L-14-336 text tower (read from open_clip's own config) names its weights the same."""
    import json
    import os

    import open_clip
    from open_clip.model import CLIPTextCfg, _build_text_tower

    real = mfm.clip_text_state_dict(width=64, layers=12, vocab=16)
    assert len(real) == 150
    config_path = os.path.join(os.path.dirname(open_clip.__file__), "model_configs", "EVA02-L-14-336.json")
    config = json.load(open(config_path))
    assert config["custom_text"] and config["text_cfg"]["width"] == 768 and config["text_cfg"]["layers"] == 12
    text_cfg = dict(config["text_cfg"], width=64, heads=1, vocab_size=16)
    with torch.device("meta"):
        tower = _build_text_tower(config["embed_dim"], CLIPTextCfg(**text_cfg))
    theirs = {"text." + k: tuple(v.shape) for k, v in tower.state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in real.items() if k != "logit_scale"}
    assert theirs == ours


def test_dtype_device_no_grad(files):
    model = load_clip_text(files["open_clip"], device="cpu", dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in model.parameters())
    assert not model.training
    got, _ = model.encode(["a cat"])
    assert got.dtype == torch.float32 and torch.allclose(got.norm(dim=-1), torch.ones(1), atol=1e-5)
    assert model.config.width == 64 and model.config.layers == 2 and model.config.out_dim == 768
    assert model.config.vocab_size == 49408 and model.context_length == 77


@pytest.mark.parametrize("which", ["timm", "none", "stub"])
def test_file_without_text_tower_names_file_and_the_one_to_use(files, which):
    name = re.escape(str(files[which]).rsplit("/", 1)[-1])
    with pytest.raises(PulidFormatError, match=f"{name}.*{re.escape(EVA_CLIP.filename)}"):
        load_clip_text(files[which])


def test_missing_and_garbage_files(tmp_path):
    with pytest.raises(ModelFileError, match="nope.pt"):
        load_clip_text(tmp_path / "nope.pt")
    path = tmp_path / "broken.pt"
    path.write_bytes(b"garbage" * 20)
    with pytest.raises(PulidFormatError, match="broken.pt"):
        load_clip_text(path)


def test_text_tower_of_wrong_shape_is_a_clear_error(tmp_path):
    sd = mfm.clip_text_state_dict(width=64, layers=2, vocab=16)
    sd["text.transformer.resblocks.1.mlp.c_fc.weight"] = torch.zeros(100, 64)  # block 1 unlike block 0
    torch.save(sd, tmp_path / "odd.pt")
    with pytest.raises(PulidFormatError, match="odd.pt.*does not fit") as err:
        load_clip_text(tmp_path / "odd.pt")
    assert "'text.transformer.resblocks.1.mlp.c_fc.weight' is (100, 64), expected (256, 64)" in str(err.value)
    sd = mfm.clip_text_state_dict(width=64, layers=2, vocab=16)
    sd["text.transformer.resblocks.0.attn.extra"] = torch.zeros(3)
    torch.save(sd, tmp_path / "extra.pt")
    with pytest.raises(PulidFormatError, match=r"'text.transformer.resblocks.0.attn.extra' is not part of it"):
        load_clip_text(tmp_path / "extra.pt")


# ----------------------------------------------------------------------------------- tokens
TOKEN_CASES = [
    "a photo of a cat",
    "Hello, World!!! -- what's up? (yes) [no] {maybe} #tag @user 3.14 50% a&b",
    "café naïve Zürich 東京 Москва",
    "a dog 🐶 with 🎉 party hat 👩‍🚀",
    "  lots \n of\twhite   space  ",
    "&amp; html &lt;escaped&gt;",
    "word " * 100,
]


def test_token_ids_are_clips(model):
    from open_clip.tokenizer import SimpleTokenizer

    clip_tokenizer = SimpleTokenizer()
    ids, infos = tokenize(TOKEN_CASES)
    assert torch.equal(ids, clip_tokenizer([clean_prompt(t) for t in TOKEN_CASES], context_length=77))
    for row, (info, text) in enumerate(zip(infos, TOKEN_CASES)):
        assert info.tokens == len(clip_tokenizer.encode(info.text)) + 2
        if not re.search(r"[()\[\]]", text):  # no ComfyUI syntax: CLIP reads the prompt as given
            assert torch.equal(ids[row], clip_tokenizer(text, context_length=77)[0]), text


def test_long_prompt_truncated_like_clip_and_reported():
    ids, (info,) = tokenize("word " * 100)
    assert info.tokens == 102 and info.truncated and info.note == "truncated: 77 of 102 tokens"
    assert ids[0, 0] == 49406 and ids[0, 76] == 49407 and (ids[0, 1:76] == ids[0, 1]).all()
    _, (short,) = tokenize("word " * 75)
    assert short.tokens == 77 and not short.truncated and short.note == ""
    _, (over,) = tokenize("word " * 76)
    assert over.note == "truncated: 77 of 78 tokens"


def test_prompt_tokens_note():
    assert PromptTokens("p", "p", 3, False).note == ""
    assert PromptTokens("p", "p", 90, True).note == "truncated: 77 of 90 tokens"
    assert CONTEXT_LENGTH == 77


@pytest.mark.parametrize("prompt, words", [
    ("a (red:1.2) hat", "a red hat"),
    ("(masterpiece), (best quality:1.4), portrait", "masterpiece, best quality, portrait"),
    ("((nested:1.1) word:0.8)", "nested word"),
    ("[background] blur", "background blur"),
    ("a photo embedding:myface, smiling", "a photo, smiling"),
    ("embedding:easynegative.pt", ""),
    (r"a \(literal\) bracket \[too\]", "a (literal) bracket [too]"),
    ("(cat: dog)", "cat: dog"),  # not a weight: ComfyUI keeps it as text
    ("(word: 1.5 )", "word"),
    ("time 12:30", "time 12:30"),
    ("line one\nline two", "line one line two"),
    ("plain prompt, no syntax.", "plain prompt, no syntax."),
])
def test_clean_prompt(prompt, words):
    assert clean_prompt(prompt) == words


def test_cleaned_words_are_what_clip_reads():
    _, (info,) = tokenize("a (red:1.2) hat")
    assert info.text == "a red hat" and info.prompt == "a (red:1.2) hat"
    assert torch.equal(tokenize("a (red:1.2) hat")[0], tokenize("a red hat")[0])


@pytest.mark.parametrize("prompt", ["", "   ", "embedding:only", "(:1.2)"])
def test_empty_prompt_names_prompt(model, prompt):
    with pytest.raises(PulidError, match="`prompt` is empty"):
        model.encode([prompt])


def test_prompt_notes():
    long_prompt = "word " * 90
    notes = prompt_notes(["short", long_prompt])
    assert [n.note for n in notes] == ["", "truncated: 77 of 92 tokens"]
    assert notes[1].prompt == long_prompt


def test_every_empty_prompt_error_is_one_message(model):
    """One function words it; the prompt is quoted when it had characters, the reporting node opens it."""
    for call, want in ((lambda: tokenize(["a cat", "(:1.2)"]), empty_prompt("(:1.2)")),
                       (lambda: prompt_notes([""]), empty_prompt("")), (lambda: model.encode([]), empty_prompt())):
        with pytest.raises(PulidError) as caught:
            call()
        assert str(caught.value) == str(want)
    assert str(empty_prompt("(:1.2)")).startswith("`prompt` is empty") and "'(:1.2)'" in str(empty_prompt("(:1.2)"))
    assert str(empty_prompt(where="Evaluate PuLID Batch")).startswith("Evaluate PuLID Batch: `prompt` is empty")


def test_no_prompts_and_non_text(model):
    with pytest.raises(PulidError, match="`prompt`"):
        model.encode([])
    with pytest.raises(PulidError, match="`prompt` must be text"):
        model.encode([3])
