"""Small model files in the real formats, with random weights, for tests and benchmarks.

No weights can be downloaded in CI, so these writers produce files that the loaders cannot tell
from the released ones except by their values:

- ``write_eva_clip_checkpoint``: EVA02-CLIP vision tower in the EVA-CLIP, timm or open_clip layout, with
  the CLIP text tower beside it where the released file has one (``clip_text_state_dict``).
- ``write_antelopev2``: ``scrfd_10g_bnkps.onnx`` + ``glintr100.onnx`` exported with torch.onnx.
  The small detector is deterministic: it fires on bright skin-like blobs (see ``draw_face``).
- ``write_facexlib``: ``detection_Resnet50_Final.pth`` and ``parsing_bisenet.pth`` in facexlib's
  own architectures, with the detection head set so that it fires everywhere or never.
"""
import os

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

EVA_SMALL = dict(embed_dim=128, depth=20)
EVA_REAL = dict(embed_dim=1024, depth=24)


# ----------------------------------------------------------------------------------- EVA-CLIP
def eva_timm_state_dict(embed_dim=128, depth=20, seed=0):
    """Random weights for an EVA02-CLIP tower of the given size, with timm's key names."""
    import timm

    torch.manual_seed(seed)
    model = timm.create_model(
        "eva02_large_patch14_clip_336", pretrained=False, num_classes=768,
        embed_dim=embed_dim, depth=depth, num_heads=embed_dim // 64,
        mlp_ratio=(int(embed_dim * 8 / 3) + 0.5) / embed_dim,
    )
    state = model.state_dict()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, value in state.items():
            # Every parameter, norms and biases included, is perturbed so that a wrong mapping shows.
            value.add_(torch.randn(value.shape, generator=generator) * 0.05)
    return state


def _to_eva_clip_names(state, embed_dim):
    """timm names -> the names in EVA02_CLIP_L_336_psz14_s6B.pt (vision part)."""
    renames = (("mlp.fc1_g", "mlp.w1"), ("mlp.fc1_x", "mlp.w2"), ("mlp.fc2", "mlp.w3"),
               ("mlp.norm", "mlp.ffn_ln"), ("attn.norm", "attn.inner_attn_ln"),
               ("attn.q_proj.bias", "attn.q_bias"), ("attn.v_proj.bias", "attn.v_bias"))
    out = {}
    for key, value in state.items():
        for old, new in renames:
            key = key.replace(old, new)
        out["visual." + key] = value
    # The original file stores the rotary tables (and a copy per block); loaders must ignore them.
    grid = 24
    table = torch.zeros(grid * grid, 64 if embed_dim >= 64 else embed_dim)
    out["visual.rope.freqs_cos"] = table
    out["visual.rope.freqs_sin"] = table
    for key in [k for k in out if k.endswith("attn.proj.weight")]:
        out[key.replace("proj.weight", "rope.freqs_cos")] = table
    return out


TEXT_SMALL = dict(width=64, layers=2)
TEXT_REAL = dict(width=768, layers=12)
TEXT_VOCAB, TEXT_CONTEXT = 49408, 77


def _stub_text_tower():
    """What these files carried before they had a text tower: a few text.* keys that cannot encode anything."""
    return {"text.token_embedding.weight": torch.randn(16, 8), "text.ln_final.weight": torch.ones(8),
            "logit_scale": torch.tensor(4.6)}


def clip_text_state_dict(width=64, layers=2, out_dim=768, vocab=TEXT_VOCAB, context=TEXT_CONTEXT, seed=0):
    """Random CLIP text-tower weights named as in EVA02_CLIP_L_336_psz14_s6B.pt (``text.*`` + ``logit_scale``).

    The names and shapes are those of the released file (open_clip's EVA02-L-14-336 weights use the same), the
    MLP is 4 × width and the projection maps to ``out_dim`` (the vision tower's), so image and text embeddings
    share a space. Every tensor, norms and biases included, is random so a wrong mapping shows.
    """
    generator = torch.Generator().manual_seed(seed + 1000)
    randn = lambda *shape, std: torch.randn(shape, generator=generator) * std
    near_one = lambda n: 1.0 + randn(n, std=0.1)
    state = {
        "text.token_embedding.weight": randn(vocab, width, std=0.02),
        "text.positional_embedding": randn(context, width, std=0.01),
        "text.ln_final.weight": near_one(width), "text.ln_final.bias": randn(width, std=0.05),
        "text.text_projection": randn(width, out_dim, std=width ** -0.5),
        "logit_scale": torch.tensor(4.6052),
    }
    for i in range(layers):
        p = f"text.transformer.resblocks.{i}."
        state.update({
            p + "ln_1.weight": near_one(width), p + "ln_1.bias": randn(width, std=0.05),
            p + "attn.in_proj_weight": randn(3 * width, width, std=width ** -0.5),
            p + "attn.in_proj_bias": randn(3 * width, std=0.05),
            p + "attn.out_proj.weight": randn(width, width, std=width ** -0.5),
            p + "attn.out_proj.bias": randn(width, std=0.05),
            p + "ln_2.weight": near_one(width), p + "ln_2.bias": randn(width, std=0.05),
            p + "mlp.c_fc.weight": randn(4 * width, width, std=width ** -0.5),
            p + "mlp.c_fc.bias": randn(4 * width, std=0.05),
            p + "mlp.c_proj.weight": randn(width, 4 * width, std=(4 * width) ** -0.5),
            p + "mlp.c_proj.bias": randn(width, std=0.05),
        })
    return state


def write_eva_clip_checkpoint(path, layout="eva-clip", embed_dim=128, depth=20, seed=0, real_size=False,
                              nested=False, text="real", text_width=None, text_layers=None):
    """Write an EVA02-CLIP checkpoint; returns ``path``.

    layout: "eva-clip" (torch pickle, ``visual.*`` + the text tower, like EVA02_CLIP_L_336_psz14_s6B.pt),
    "timm" (safetensors with timm's Eva keys, vision only, like timm's model.safetensors) or "open_clip"
    (torch pickle, ``visual.trunk.*`` + the text tower).
    text (eva-clip and open_clip layouts): "real" (a random text tower in the real layout, width 64 and
    2 layers unless given; the real 768 × 12 with ``real_size``), "stub" (a few text.* keys that cannot encode)
    or "none" (vision only).
    ``real_size=True`` writes the real EVA02-L size (300M + 123M parameters, ~1.7 GB) for benchmarks.
    ``nested=True`` wraps the dict in {"state_dict": ...} as training checkpoints do.
    """
    if real_size:
        embed_dim, depth = EVA_REAL["embed_dim"], EVA_REAL["depth"]
    sizes = TEXT_REAL if real_size else TEXT_SMALL
    text_width, text_layers = text_width or sizes["width"], text_layers or sizes["layers"]
    state = eva_timm_state_dict(embed_dim, depth, seed)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if layout == "timm":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, path)
        return path
    if layout == "eva-clip":
        out = _to_eva_clip_names(state, embed_dim)
    elif layout == "open_clip":
        out = {"visual.trunk." + k: v for k, v in state.items()}
    else:
        raise ValueError(f"unknown layout {layout!r}")
    if text == "real":
        out.update(clip_text_state_dict(text_width, text_layers, out_dim=768, seed=seed))
    elif text == "stub":
        out.update(_stub_text_tower())
    elif text != "none":
        raise ValueError(f"unknown text {text!r}")
    torch.save({"state_dict": out} if nested else out, path)
    return path


# ----------------------------------------------------------------------------------- antelopev2
# Face geometry shared by both test detectors: the 5 landmarks relative to the box centre, in box
# sides (left eye, right eye, nose, left and right mouth corner).
FACE_POINTS = np.array([[-0.18, -0.10], [0.18, -0.10], [0.0, 0.06], [-0.14, 0.22], [0.14, 0.22]], np.float32)
SKIN_RGB = (224, 172, 140)
DETECT_STRIDE = 32


def draw_face(image, center, side, color=SKIN_RGB):
    """Draw a synthetic face the small detector finds: a skin-coloured square with dark eyes and mouth.

    For an exact box, put ``center`` on a detector cell centre (32*k + 16 in 640x640 detector
    input) and keep faces more than 7 cells (224 px) apart; sides from ~64 to ~200 px work.
    """
    cx, cy = center
    half = side // 2
    image[cy - half:cy + half, cx - half:cx + half] = color
    dot = max(2, side // 16)
    for px, py in FACE_POINTS[[0, 1, 3, 4]]:
        x, y = int(cx + px * side), int(cy + py * side)
        image[y - dot:y + dot, x - dot:x + dot] = (60, 40, 40)
    return image


def face_photo(seed, center=(336, 304), side=128, size=640, background=30):
    """A ``size``² photo of one synthetic face (draw_face) with its own skin noise: each seed is another
    person to ArcFace, the same seed the same one."""
    image = draw_face(np.full((size, size, 3), background, np.uint8), center, side)
    half = side // 2
    box = (slice(center[1] - half, center[1] + half), slice(center[0] - half, center[0] + half))
    noise = np.random.default_rng(seed).integers(-6, 7, image[box].shape, dtype=np.int16)
    image[box] = (image[box].astype(np.int16) + noise).clip(0, 255)
    return image


def image_batch(*images):
    """RGB uint8 arrays as a ComfyUI IMAGE batch: float32 [N, H, W, 3] in 0..1."""
    return torch.from_numpy(np.stack(images).astype(np.float32) / 255.0)


class _BlobDetector(nn.Module):
    """SCRFD-shaped detector that fires once per skin-coloured blob, at the blob's centre cell.

    Only the stride-32 level scores; the box side is sqrt(blob area), measured by counting skin
    cells in a 7x7-cell window; a tent-weighted window and a 3x3 max filter keep the centre cell only.
    """

    def __init__(self):
        super().__init__()
        skin = (torch.tensor(SKIN_RGB, dtype=torch.float32) - 127.5) / 128.0  # insightface input scaling
        self.register_buffer("skin", skin.view(1, 3, 1, 1))
        self.register_buffer("points", torch.from_numpy(FACE_POINTS).reshape(1, 10))
        ramp = 4.0 - torch.arange(-3, 4).abs().float()
        self.register_buffer("tent", (ramp[:, None] * ramp[None, :]).view(1, 1, 7, 7))

    def forward(self, x):
        s = DETECT_STRIDE
        distance = ((x - self.skin) ** 2).sum(1, keepdim=True)
        skin = torch.sigmoid((0.05 - distance) * 200.0)
        cells = F.avg_pool2d(skin, s, s)
        count = F.avg_pool2d(cells, 7, 1, 3, count_include_pad=True) * 49.0
        centred = F.conv2d(cells, self.tent, padding=3)  # peaks at the blob's centre cell only
        peak = (centred >= F.max_pool2d(centred, 3, 1, 1)).float()
        score = torch.sigmoid(4.0 * (count - 1.5)) * peak
        side = torch.sqrt(count * float(s * s)).permute(0, 2, 3, 1).reshape(-1, 1)
        score = score.permute(0, 2, 3, 1).reshape(-1, 1)
        zeros = torch.zeros_like(score)
        # Two anchors per cell; only the first one is used. Anchors sit at the cell's top-left corner.
        scores32 = torch.stack([score, zeros], 1).reshape(-1, 1)
        bbox = torch.cat([side / 2 - s / 2, side / 2 - s / 2, side / 2 + s / 2, side / 2 + s / 2], 1) / s
        bbox32 = torch.stack([bbox, torch.zeros_like(bbox)], 1).reshape(-1, 4)
        kps = (self.points * side + s / 2) / s
        kps32 = torch.stack([kps, torch.zeros_like(kps)], 1).reshape(-1, 10)
        outs = {}
        for stride in (8, 16):
            cell = F.avg_pool2d(x[:, :1], stride, stride).permute(0, 2, 3, 1).reshape(-1, 1) * 0.0
            cell = torch.cat([cell, cell], 1).reshape(-1, 1)
            outs[stride] = (cell, cell.expand(-1, 4) * 1.0, cell.expand(-1, 10) * 1.0)
        return (outs[8][0], outs[16][0], scores32, outs[8][1], outs[16][1], bbox32, outs[8][2], outs[16][2], kps32)


class _TinyArcFace(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 8, 8)
        self.conv2 = nn.Conv2d(16, 32, 2, 2)
        self.fc = nn.Linear(32 * 7 * 7, 512)

    def forward(self, x):
        return self.fc(F.relu(self.conv2(F.relu(self.conv1(x)))).flatten(1))


def _conv_bn(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.PReLU(cout))


class _Residual(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x):
        return x + self.body(x)


def _stage(cin, cout, blocks, stride):
    return nn.Sequential(_conv_bn(cin, cout, stride), *[_Residual(cout) for _ in range(blocks)])


class _RealSizeArcFace(nn.Module):
    """IResNet100-like cost: residual 3x3 stages [3, 13, 30, 3] at 56/28/14/7 px, ~24 GFLOPs, 512 out."""

    def __init__(self):
        super().__init__()
        self.stem = _conv_bn(3, 64)
        self.stages = nn.Sequential(_stage(64, 64, 3, 2), _stage(64, 128, 13, 2), _stage(128, 256, 30, 2),
                                    _stage(256, 512, 3, 2))
        self.fc = nn.Linear(512 * 7 * 7, 512)

    def forward(self, x):
        return self.fc(self.stages(self.stem(x)).flatten(1))


class _RealSizeScrfd(nn.Module):
    """SCRFD-10G-like cost (~10 GFLOPs at 640x640): a plain 3-level conv pyramid with 2-anchor heads."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, 32, 2), _stage(32, 64, 1, 2))
        self.levels = nn.ModuleList([_stage(64, 128, 2, 2), _stage(128, 256, 2, 2), _stage(256, 256, 2, 2)])
        self.heads = nn.ModuleList([nn.Conv2d(c, 2 * 15, 3, 1, 1) for c in (128, 256, 256)])

    def forward(self, x):
        x = self.stem(x)
        scores, boxes, kps = [], [], []
        for level, head in zip(self.levels, self.heads):
            x = level(x)
            out = head(x).permute(0, 2, 3, 1).reshape(-1, 15)
            scores.append(torch.sigmoid(out[:, :1] - 20.0))  # random weights must not flood NMS
            boxes.append(out[:, 1:5])
            kps.append(out[:, 5:15])
        return tuple(scores + boxes + kps)


def _export(model, path, size, dynamic):
    model.eval()
    dummy = torch.zeros(1, 3, *size)
    names = [f"out{i}" for i in range(9)] if dynamic else ["embedding"]
    axes = {"input.1": {2: "height", 3: "width"}} if dynamic else None
    if dynamic:
        axes.update({name: {0: f"n{name}"} for name in names})
    torch.onnx.export(model, (dummy,), str(path), input_names=["input.1"], output_names=names,
                      dynamic_axes=axes, opset_version=17, dynamo=False)


def antelopev2_networks(real_size=False, seed=0, blob_detector=None):
    """(detector, recognizer) as torch modules in eval mode: what write_antelopev2 exports with the same
    arguments, for references computed in another precision."""
    torch.manual_seed(seed)
    blob_detector = not real_size if blob_detector is None else blob_detector
    detector = _BlobDetector() if blob_detector else _RealSizeScrfd()
    recognizer = _RealSizeArcFace() if real_size else _TinyArcFace()
    return detector.eval(), recognizer.eval()


def write_antelopev2(folder, nested=False, real_size=False, seed=0, blob_detector=None):
    """Write antelopev2's scrfd_10g_bnkps.onnx and glintr100.onnx; returns the folder to pass in.

    ``nested=True`` puts them in folder/antelopev2/ as the release zip unpacks (the returned
    folder is the outer one). Small models: the blob detector above and a random tiny ArcFace.
    ``real_size=True``: random networks with the real models' cost, for benchmarks. Its random detector
    finds no face; ``blob_detector=True`` keeps the blob detector (finds ``draw_face`` faces) beside the
    real-size ArcFace, for benchmarks that need a face recognised.
    """
    target = os.path.join(folder, "antelopev2") if nested else os.fspath(folder)
    os.makedirs(target, exist_ok=True)
    detector, recognizer = antelopev2_networks(real_size, seed, blob_detector)
    with torch.no_grad():
        _export(detector, os.path.join(target, "scrfd_10g_bnkps.onnx"), (640, 640), dynamic=True)
        _export(recognizer, os.path.join(target, "glintr100.onnx"), (112, 112), dynamic=False)
    # The release also ships landmark/attribute models that we ignore.
    with open(os.path.join(target, "genderage.onnx"), "wb") as handle:
        handle.write(b"ignored")
    return os.fspath(folder)


# ----------------------------------------------------------------------------------- facexlib
def write_facexlib(folder, faces=True, seed=0):
    """Write detection_Resnet50_Final.pth and parsing_bisenet.pth (facexlib's own classes, random weights).

    The RetinaFace head is rewritten so detection is deterministic: with ``faces=True`` every
    128-px anchor of the stride-16 level fires (landmarks laid out like a face in each box), with
    ``faces=False`` nothing ever fires. Saved like the release: a plain state dict, the detector's
    keys with DataParallel's "module." prefix.
    """
    from facexlib.detection.retinaface import RetinaFace
    from facexlib.parsing.bisenet import BiSeNet

    torch.manual_seed(seed)
    os.makedirs(folder, exist_ok=True)
    detector = RetinaFace(network_name="resnet50", half=False, device="cpu")
    landmark_bias = torch.from_numpy(FACE_POINTS.reshape(-1) / 0.1)  # decode: centre + pred * 0.1 * prior
    with torch.no_grad():
        for level in range(3):
            for head in (detector.ClassHead[level], detector.BboxHead[level], detector.LandmarkHead[level]):
                head.conv1x1.weight.zero_()
                head.conv1x1.bias.zero_()
            # per anchor (64 px, 128 px): [background, face] logits
            fire = faces and level == 1
            detector.ClassHead[level].conv1x1.bias.copy_(
                torch.tensor([8.0, -8.0, -8.0, 8.0] if fire else [8.0, -8.0, 8.0, -8.0]))
            detector.LandmarkHead[level].conv1x1.bias.copy_(torch.cat([landmark_bias, landmark_bias]))
    torch.save({"module." + k: v for k, v in detector.state_dict().items()},
               os.path.join(folder, "detection_Resnet50_Final.pth"))
    parser = BiSeNet(num_class=19)
    torch.save(parser.state_dict(), os.path.join(folder, "parsing_bisenet.pth"))
    return os.fspath(folder)


def write_models_folder(models):
    """A ComfyUI models folder with the small generated face files in their catalog folders (EVA-CLIP with its text
    tower, antelopev2, facexlib) and a stand-in PuLID file (only hashed by the sweep): what the sweep scores with."""
    from pulid.catalog import ANTELOPEV2, EVA_CLIP, FACEXLIB_DETECTION, PULID_V1_1

    write_eva_clip_checkpoint(str(models / EVA_CLIP.folder / EVA_CLIP.filename))
    write_antelopev2(str(models / ANTELOPEV2.folder))
    write_facexlib(str(models / FACEXLIB_DETECTION.folder))
    (models / PULID_V1_1.folder).mkdir()
    (models / PULID_V1_1.folder / PULID_V1_1.filename).write_bytes(b"only hashed here")
    return models
