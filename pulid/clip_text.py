"""EVA02-CLIP text tower: turns prompts into embeddings in the same space as the vision tower's.

Prompt adherence (CLIP-T) compares a generated image with its prompt in CLIP space, so it needs the text
half of the EVA02-CLIP-L-14-336 model whose vision half PuLID already uses. Nothing new is downloaded: the
original EVA-CLIP checkpoint (``EVA02_CLIP_L_336_psz14_s6B.pt``) and open_clip's EVA02-L-14-336 weights carry
the text tower beside the vision tower, under the same ``text.*`` names (12 layers, width 768, 77 tokens);
timm's file is vision-only, and for it the error says which file to use instead.

The tower is open_clip's ``TextTransformer`` (the class open_clip builds for this model), used as a library
and sized from the checkpoint's tensor shapes, so small random test files load the same way. The tokenizer
is open_clip's CLIP BPE, whose vocabulary ships inside the wheel. Prompts are ComfyUI prompts: their weight
and embedding syntax means nothing to CLIP and is stripped to the words first (``clean_prompt``).
"""
import functools
import logging
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .catalog import EVA_CLIP
from .errors import PulidError, PulidFormatError
from .eva_clip import describe_state, read_checkpoint

logger = logging.getLogger(__name__)

PREFIX = "text."
CONTEXT_LENGTH = 77
TEXT_HINT = (f"Prompt adherence needs the EVA-CLIP text tower: {EVA_CLIP.filename} from {EVA_CLIP.urls[0]} "
             f"(in models/{EVA_CLIP.folder}) has it, as do open_clip's EVA02-L-14-336 weights "
             f"(open_clip_pytorch_model.bin); timm's vision-only model.safetensors does not.")
# Per block: the keys of open_clip's / EVA-CLIP's ResidualAttentionBlock, the same in both layouts.
_BLOCK_KEYS = ("ln_1.weight", "ln_1.bias", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
               "attn.out_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
               "mlp.c_proj.weight", "mlp.c_proj.bias")
_TOP_KEYS = ("token_embedding.weight", "positional_embedding", "ln_final.weight", "ln_final.bias",
             "text_projection")


# ----------------------------------------------------------------------------------- prompts
@dataclass
class PromptTokens:
    """What CLIP saw of one prompt, so a report can say when a long prompt was cut."""

    prompt: str  # as given
    text: str  # the words fed to CLIP (clean_prompt of the prompt)
    tokens: int  # token count with the start and end tokens, before truncation
    truncated: bool
    context_length: int = CONTEXT_LENGTH

    @property
    def note(self) -> str:
        return f"truncated: {self.context_length} of {self.tokens} tokens" if self.truncated else ""


def empty_prompt(prompt=None, where=""):
    """The one "`prompt` is empty" error (the nodes', the library's), ``where`` being the node that reports it.

    Empty also means no words once ComfyUI's weights and ``embedding:`` names are set aside (``clean_prompt``):
    CLIP would compare the image with nothing. ``prompt``, when it had characters, is quoted.
    """
    shown = f" It reads {prompt!r}." if isinstance(prompt, str) and prompt.strip() else ""
    opening = f"{where}: " if where else ""
    return PulidError(f"{opening}`prompt` is empty (or has no words once ComfyUI's embeddings and weights are set "
                      f"aside). Type (or connect) the positive prompt the images were made from: prompt adherence "
                      f"compares each image with it.{shown}")


_ESCAPES = {"\\\\": "\x00", "\\(": "\x01", "\\)": "\x02", "\\[": "\x03", "\\]": "\x04"}
_UNESCAPE = {"\x00": "\\", "\x01": "(", "\x02": ")", "\x03": "[", "\x04": "]"}
_WEIGHT = re.compile(r":\s*[-+]?(?:\d+\.?\d*|\.\d+)\s*\)")
_EMBEDDING = re.compile(r"embedding:[^\s,()\[\]]+", re.IGNORECASE)


def clean_prompt(prompt: str) -> str:
    """The words of a ComfyUI prompt, as CLIP should read them.

    ComfyUI's ``(word:1.2)`` and ``(word)`` weights and ``[word]`` brackets only scale the conditioning; the
    text encoder never sees the brackets or numbers, so they are removed and the words kept.
    ``embedding:name`` refers to a textual-inversion file whose learnt vectors the EVA-CLIP tower does not
    have, so it is dropped. Escaped brackets (``\\(``) are literal text and stay, unescaped.
    """
    text = str(prompt)
    for escape, mark in _ESCAPES.items():
        text = text.replace(escape, mark)
    text = _WEIGHT.sub(")", text)
    text = _EMBEDDING.sub(" ", text)
    text = re.sub(r"[()\[\]]", " ", text)
    text = " ".join(text.split())
    text = re.sub(r" ([,.;:!?])", r"\1", text)  # "(red:1.2), hat" reads "red, hat", not "red , hat"
    for mark, char in _UNESCAPE.items():
        text = text.replace(mark, char)
    return text.strip(" ,")


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """open_clip's CLIP BPE tokenizer (vocabulary read from the wheel; built once, ~0.1 s)."""
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def tokenize(prompts, context_length=CONTEXT_LENGTH):
    """Token ids [N, context_length] and what each prompt became.

    Truncated the way CLIP truncates: the start token, the first ``context_length - 2`` tokens and the end
    token. An empty prompt (or one that is only weights and embeddings) is an error naming ``prompt``:
    scoring an image against no text means nothing.
    """
    if isinstance(prompts, str):
        prompts = [prompts]
    tokenizer = _tokenizer()
    ids = torch.zeros(len(prompts), context_length, dtype=torch.long)
    infos = []
    for row, prompt in enumerate(prompts):
        if not isinstance(prompt, str):
            raise PulidError(f"`prompt` must be text, got {type(prompt).__name__}.")
        text = clean_prompt(prompt)
        body = tokenizer.encode(text) if text else []
        if not body:
            raise empty_prompt(prompt)
        count = len(body) + 2
        kept = [tokenizer.sot_token_id] + body[:context_length - 2] + [tokenizer.eot_token_id]
        ids[row, :len(kept)] = torch.tensor(kept)
        infos.append(PromptTokens(prompt, text, count, count > context_length, context_length))
    return ids, infos


def prompt_notes(prompts, context_length=CONTEXT_LENGTH) -> list[PromptTokens]:
    """What CLIP reads of each prompt, without running the tower (``.note`` says "truncated: 77 of N tokens"
    for a long one); an empty prompt is ``empty_prompt``'s error."""
    return tokenize(prompts, context_length)[1]


# ----------------------------------------------------------------------------------- text tower
@dataclass
class ClipTextConfig:
    """Sizes of a CLIP text tower, read from a checkpoint's tensor shapes."""

    width: int = 768
    layers: int = 12
    heads: int = 12
    mlp_hidden: int = 3072
    context_length: int = CONTEXT_LENGTH
    vocab_size: int = 49408
    out_dim: int = 768


class ClipText(nn.Module):
    """The text tower plus its tokenizer: ``encode(prompts)`` gives unit-length float32 CPU embeddings."""

    def __init__(self, tower, config):
        super().__init__()
        self.tower = tower
        self.config = config
        self.context_length = config.context_length

    @torch.no_grad()
    def encode(self, prompts):
        """(embeddings [N, out_dim] float32 unit length on the CPU, list of PromptTokens) for a list of prompts."""
        if isinstance(prompts, str):
            prompts = [prompts]
        if not len(prompts):
            raise empty_prompt()
        ids, infos = tokenize(list(prompts), self.context_length)
        param = next(self.tower.parameters())
        features = self.tower(ids.to(param.device))
        # On the CPU like image_embeddings' results, wherever the tower runs: the cosines are taken there.
        return F.normalize(features.float(), dim=-1).cpu(), infos

    def forward(self, ids):
        return self.tower(ids)


def load_clip_text(path, device=None, dtype=None):
    """Load the EVA02-CLIP text tower from an EVA-CLIP or open_clip checkpoint at ``path``.

    A file without a complete text tower is a PulidFormatError naming the file and the file that has one.
    Both towers at once: ``tradeoff.load_clip`` (one read of the file). Returns a ClipText in eval mode.
    """
    return text_tower(read_checkpoint(path), path, device, dtype)


def text_tower(state, path, device=None, dtype=None):
    """The text tower (ClipText, eval mode) from ``eva_clip.read_checkpoint``'s dict of the file at ``path``.

    Built on the meta device with open_clip's ``TextTransformer`` and the checkpoint's tensors assigned to
    it (no time spent on random initialisation). ``path`` only names the file in errors.
    """
    config = infer_config(state, path)
    tower = _build(config)
    weights = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
    weights = {k: v for k, v in weights.items() if k != "attn_mask"}
    misfit = _misfit(tower.state_dict(), weights)
    if misfit:
        raise PulidFormatError(f"{path}: its text tower does not fit the EVA02-CLIP text transformer "
                               f"({misfit}). {TEXT_HINT}")
    tower.load_state_dict(weights, strict=True, assign=True)
    # The causal mask is not stored in checkpoints; the meta build left a placeholder.
    tower.attn_mask = tower.build_causal_mask()
    module = ClipText(tower, config).eval().requires_grad_(False)
    logger.debug("CLIP text tower from %s: %s", path, config)
    return module.to(device=device or "cpu", dtype=dtype or torch.float32)


def _misfit(expected, weights):
    """The first difference between the tower's own tensors and the file's, in words ("" when they fit): torch's
    load_state_dict message names only the module class."""
    for key, tensor in expected.items():
        if key not in weights:
            return f"'text.{key}' is missing"
        if tuple(weights[key].shape) != tuple(tensor.shape):
            return f"'text.{key}' is {tuple(weights[key].shape)}, expected {tuple(tensor.shape)}"
    extra = sorted(set(weights) - set(expected))
    return f"'text.{extra[0]}' is not part of it" if extra else ""


def infer_config(state, path="checkpoint"):
    """Read the text tower's sizes from tensor shapes; a missing or stub text tower is an error."""
    present = [k for k in state if isinstance(k, str) and k.startswith(PREFIX)]
    if not present:
        vision_only = any(isinstance(k, str) and k.endswith("pos_embed") for k in state)
        found = "only a vision tower" if vision_only else describe_state(state)
        raise PulidFormatError(f"{path}: has no CLIP text tower (found {found}). {TEXT_HINT}")
    layer_ids = {int(m.group(1)) for k in present
                 if (m := re.match(r"text\.transformer\.resblocks\.(\d+)\.", k))}
    layers = max(layer_ids) + 1 if layer_ids else 0
    needed = [PREFIX + k for k in _TOP_KEYS]
    needed += [f"{PREFIX}transformer.resblocks.{i}.{k}" for i in range(layers) for k in _BLOCK_KEYS]
    missing = [k for k in needed if not isinstance(state.get(k), torch.Tensor)]
    if not layers or missing:
        what = "no transformer layers" if not layers else f"missing '{missing[0]}'"
        raise PulidFormatError(f"{path}: its text tower is incomplete ({what}; {len(present)} text.* entries), "
                               f"so it cannot encode prompts. {TEXT_HINT}")
    vocab, width = state[PREFIX + "token_embedding.weight"].shape
    context = state[PREFIX + "positional_embedding"].shape[0]
    projection = state[PREFIX + "text_projection"]
    mlp_hidden = state[PREFIX + "transformer.resblocks.0.mlp.c_fc.weight"].shape[0]
    if width % 64 or projection.ndim != 2 or projection.shape[0] != width:
        raise PulidFormatError(f"{path}: text tower of width {width} with a {tuple(projection.shape)} projection "
                               f"is not an EVA02-CLIP text tower. {TEXT_HINT}")
    return ClipTextConfig(width=width, layers=layers, heads=width // 64, mlp_hidden=mlp_hidden,
                          context_length=context, vocab_size=vocab, out_dim=projection.shape[1])


def _build(config):
    """open_clip's TextTransformer as open_clip builds it for EVA02-L-14-336 (GELU, causal mask, argmax
    pooling on the end token, projection without bias), on the meta device."""
    from open_clip.transformer import TextTransformer

    with torch.device("meta"):
        return TextTransformer(
            context_length=config.context_length, vocab_size=config.vocab_size, width=config.width,
            heads=config.heads, layers=config.layers,
            # open_clip sizes the MLP as int(width * ratio); the +0.5 keeps that exact for any width.
            mlp_ratio=(config.mlp_hidden + 0.5) / config.width,
            output_dim=config.out_dim, act_layer=nn.GELU,
        )
