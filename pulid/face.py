"""The PuLID face pipeline: one ID image -> ArcFace + EVA-CLIP identity features.

Per image, as in the official ``get_id_embedding`` (pulid/pipeline.py):

1. RGB image, long side shrunk to 1024 (Lanczos), converted to BGR for insightface and facexlib.
2. insightface antelopev2 (SCRFD 640x640, threshold 0.5) finds faces; ArcFace (glintr100) gives
   each face its raw 512-d embedding.
3. One face is chosen (official: the largest box).
4. facexlib's RetinaFace (threshold 0.97) gives 5 landmarks; the face is warped to the FFHQ
   512x512 template. The official demo takes facexlib's most central face; we take the facexlib
   face that overlaps the chosen box, which is the same face when there is one face and the right
   one when there are several. If insightface found nothing, facexlib's central face is used and
   its crop gives the ArcFace embedding (official fallback); if facexlib misses the chosen face,
   insightface's own 5 landmarks are used for the warp.
5. BiSeNet parses the crop; background, hair, ears, neck and cloth become white, the rest gray.
6. EVA02-CLIP-L reads that image at 336: pooled CLS (L2-normalised) and 5 hidden states.

``id_cond`` = [raw ArcFace (512), normalised EVA pooled (768)], as the IDEncoder expects.
Everything is loaded in ``FaceEncoder.__init__``; calls do no file reads.
"""
import logging
import os
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import nn

from . import state_dict
from .catalog import FACEXLIB_DETECTION, FACEXLIB_PARSING
from .detector import DetectedFace, FaceDetector, find_antelopev2, load_onnx, resolve_providers, select_face
from .errors import FaceNotFoundError, ModelFileError, PulidFormatError
from .eva_clip import load_eva_clip, preprocess
from .image_input import to_rgb_uint8
from .regions import centre_inside

logger = logging.getLogger(__name__)

LONG_SIDE = 1024
FACEXLIB_THRESH = 0.97
SAME_FACE_IOU = 0.3
ALIGNED_SIZE = 512
# Parsing labels that PuLID paints white: background, neck, cloth, ears, earring, hair, hat (BiSeNet/CelebAMask-HQ ids).
BACKGROUND_LABELS = (0, 16, 18, 7, 8, 9, 14, 15)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# 5-point FFHQ template for a 512x512 crop (eyes, nose, mouth corners), as used by facexlib.
FFHQ_TEMPLATE_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                              [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float32)
WARP_BORDER = (135, 133, 132)

FACEXLIB_URLS = {entry.filename: entry.urls[0] for entry in (FACEXLIB_DETECTION, FACEXLIB_PARSING)}



@dataclass
class FaceFeatures:
    id_cond: torch.Tensor  # [1, 1280] float32 CPU: raw ArcFace (512) + L2-normalised EVA pooled (768)
    vit_hidden: list  # 5 x [1, 577, 1024] float32 CPU
    aligned: np.ndarray  # 512x512x3 uint8 RGB: the aligned face crop
    masked: np.ndarray  # 512x512x3 uint8 RGB: what EVA-CLIP saw (gray face, white elsewhere)
    face: DetectedFace = field(default=None)  # None when only facexlib found the face


# ---------------------------------------------------------------------------------- image input
def resize_long_side(image, long_side=LONG_SIDE):
    """Shrink so the long side is ``long_side`` (official demo: Lanczos, int() sides); never enlarge."""
    h, w = image.shape[:2]
    if max(h, w) <= long_side:
        return image
    scale = long_side / max(h, w)
    return cv2.resize(image, (int(w * scale), int(h * scale)), interpolation=cv2.INTER_LANCZOS4)


# ---------------------------------------------------------------------------------- model files
def _load_torch_net(folder, name, build):
    path = os.path.join(os.fspath(folder), name)
    if not os.path.isfile(path):
        raise ModelFileError(f"facexlib model missing: {name} is not in {folder}. Download it from "
                             f"{FACEXLIB_URLS[name]} into that folder.")
    state = state_dict.read(path, lambda problem: f"{path}: cannot be read as a PyTorch checkpoint: it {problem} "
                                                  f"Get it from {FACEXLIB_URLS[name]}.")
    if isinstance(state, dict):
        state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    with torch.device("meta"):
        net = build()
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except Exception as exc:
        raise PulidFormatError(f"{path}: is not facexlib's {name} ({str(exc).strip().splitlines()[0][:200]}). "
                               f"Download it from {FACEXLIB_URLS[name]}.") from exc
    return net.eval().requires_grad_(False)


def load_facexlib(folder):
    """RetinaFace-ResNet50 and BiSeNet from ``folder``; checked before facexlib could download anything."""
    from facexlib.detection.retinaface import RetinaFace
    from facexlib.parsing.bisenet import BiSeNet

    detector = _load_torch_net(folder, FACEXLIB_DETECTION.filename,
                               lambda: RetinaFace(network_name="resnet50", half=False, device="meta"))
    parser = _load_torch_net(folder, FACEXLIB_PARSING.filename, lambda: BiSeNet(num_class=19))
    return detector, parser


# ---------------------------------------------------------------------------------- the encoder
def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _module_device(module):
    return next(module.parameters()).device


def mask_face(pixels, labels):
    """White where the parsing label is background-like, gray (0.299R+0.587G+0.114B) elsewhere."""
    gray = (0.299 * pixels[:, 0:1] + 0.587 * pixels[:, 1:2] + 0.114 * pixels[:, 2:3]).expand_as(pixels)
    background = torch.zeros_like(labels, dtype=torch.bool)
    for label in BACKGROUND_LABELS:
        background |= labels == label
    return torch.where(background, torch.ones_like(pixels), gray)


def _to_uint8(pixels):
    return (pixels[0].permute(1, 2, 0).clamp(0, 1) * 255.0).round().to(torch.uint8).cpu().numpy()


class FaceEncoder:
    """insightface + facexlib + EVA-CLIP, loaded once, for PuLID ID features."""

    def __init__(self, eva_clip, insightface_dir, facexlib_dir, providers=None, device="cpu", dtype=torch.float32):
        self.providers = resolve_providers(providers)
        self.detector = FaceDetector(insightface_dir, self.providers)
        _, recognizer_path = find_antelopev2(insightface_dir)
        self.recognizer = load_onnx(recognizer_path, "recognition", self.providers)
        self.recognizer.prepare(0)
        self.retinaface, self.parser = load_facexlib(facexlib_dir)
        self.eva = eva_clip if isinstance(eva_clip, nn.Module) else load_eva_clip(eva_clip)
        # The file the vision tower came from (None when given a loaded module): the text tower beside it is read
        # only when prompt adherence is measured (Evaluate PuLID Batch), never here.
        self.eva_clip_path = None if isinstance(eva_clip, nn.Module) else os.fspath(eva_clip)
        self.to(device, dtype)

    @property
    def torch_modules(self):
        return {"eva_clip": self.eva, "face_detector": self.retinaface, "face_parser": self.parser}

    def to(self, device, dtype=None):
        self.eva.to(device=device, dtype=dtype)
        # facexlib nets stay float32: they are small and their thresholds were tuned in float32.
        self.retinaface.to(device)
        self.parser.to(device)
        return self

    # ---- detection
    def detect(self, image):
        """All insightface faces in ``image`` (as given, no resize), each with its ArcFace embedding."""
        bgr = cv2.cvtColor(to_rgb_uint8(image), cv2.COLOR_RGB2BGR)
        faces = self.detector.detect_bgr(bgr)
        for face in faces:
            self._embed(bgr, face)
        return faces

    def choose(self, image, choice="largest", image_index=None, within=None):
        """The chosen insightface face of ``image`` (as given) with its ArcFace embedding.

        Only that face goes through ArcFace, so a group photo costs one recognition, not one per
        person. ``within`` ([H, W] bool): only faces whose box centre lies in it are candidates.
        Raises FaceNotFoundError when there is no face or fewer than the choice asks for.
        """
        bgr = cv2.cvtColor(to_rgb_uint8(image, image_index), cv2.COLOR_RGB2BGR)
        faces = self.detector.detect_bgr(bgr)
        if within is not None:
            faces = [face for face in faces if centre_inside(within, face)]
        if not faces:
            where = f" in image {image_index}" if image_index is not None else ""
            where += " inside the mask" if within is not None else ""
            raise FaceNotFoundError(f"No face found{where}.", image_index)
        return self._embed(bgr, select_face(faces, choice, image_index))

    def _embed(self, bgr, face):
        from insightface.app.common import Face

        found = Face(bbox=np.asarray(face.bbox, np.float32), kps=face.kps, det_score=face.score)
        face.embedding = np.asarray(self.recognizer.get(bgr, found), np.float32).reshape(-1)
        return face

    def _facexlib_faces(self, bgr):
        """[N, 15] rows: box (4), score, 5 landmarks (x, y)."""
        net = self.retinaface
        device = _module_device(net)
        if net.device != device:  # facexlib keeps its device and mean as plain attributes
            net.device = device
            net.mean_tensor = torch.tensor([[[[104.0]], [[117.0]], [[123.0]]]], device=device)
        with torch.no_grad():
            return net.detect_faces(bgr, FACEXLIB_THRESH)

    # ---- encoding
    def encode(self, image, face="largest", image_index=0):
        rgb = resize_long_side(to_rgb_uint8(image, image_index))
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        faces = self.detector.detect_bgr(bgr)
        chosen = self._embed(bgr, select_face(faces, face, image_index)) if faces else None
        landmarks = self._landmarks(bgr, chosen, image_index)
        matrix = cv2.estimateAffinePartial2D(landmarks, FFHQ_TEMPLATE_512, method=cv2.LMEDS)[0]
        if matrix is None:
            raise FaceNotFoundError(f"The face in image {image_index} could not be aligned (degenerate landmarks). "
                                    f"Try a clearer, more frontal photo.", image_index)
        aligned_bgr = cv2.warpAffine(bgr, matrix, (ALIGNED_SIZE, ALIGNED_SIZE),
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=WARP_BORDER)
        if chosen is not None:
            arcface = chosen.embedding
        else:
            logger.info("insightface found no face in image %d; ArcFace runs on the facexlib crop", image_index)
            arcface = np.asarray(self.recognizer.get_feat(aligned_bgr), np.float32).reshape(-1)

        aligned_rgb = cv2.cvtColor(aligned_bgr, cv2.COLOR_BGR2RGB)
        with torch.no_grad():
            pixels = torch.from_numpy(aligned_rgb).permute(2, 0, 1)[None].float() / 255.0
            masked = self.face_features_image(pixels)
            eva_device = _module_device(self.eva)
            eva_dtype = next(self.eva.parameters()).dtype
            eva_in = preprocess(masked.to(eva_device), self.eva.image_size).to(eva_dtype)
            pooled, hidden = self.eva(eva_in)
            pooled = pooled.float()
            pooled = pooled / torch.norm(pooled, p=2, dim=1, keepdim=True)
            id_cond = torch.cat([torch.from_numpy(arcface)[None].to(pooled.device), pooled], dim=-1)
        return FaceFeatures(
            id_cond=id_cond.float().cpu(),
            vit_hidden=[h.float().cpu() for h in hidden],
            aligned=aligned_rgb,
            masked=_to_uint8(masked),
            face=chosen,
        )

    def _landmarks(self, bgr, chosen, image_index):
        found = self._facexlib_faces(bgr)
        if chosen is None:
            if len(found) == 0:
                raise FaceNotFoundError(
                    f"No face found in image {image_index}. Use a photo where the face is clearly visible, "
                    f"not too small, and not cut off.", image_index)
            h, w = bgr.shape[:2]
            centres = (found[:, 0:2] + found[:, 2:4]) / 2
            best = int(np.argmin(np.linalg.norm(centres - np.array([w / 2, h / 2]), axis=1)))
            return found[best, 5:15].reshape(5, 2)
        overlaps = [_iou(chosen.bbox, row[:4]) for row in found]
        if overlaps and max(overlaps) >= SAME_FACE_IOU:
            return found[int(np.argmax(overlaps)), 5:15].reshape(5, 2)
        logger.info("facexlib did not find the chosen face in image %d; aligning with insightface landmarks",
                    image_index)
        return chosen.kps

    def face_features_image(self, pixels):
        """Aligned RGB [1,3,512,512] in [0,1] -> BiSeNet parsing -> white/gray image, same shape, CPU."""
        device = _module_device(self.parser)
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        logits = self.parser(((pixels - mean) / std).to(device))[0]
        labels = logits.argmax(dim=1, keepdim=True).cpu()
        return mask_face(pixels, labels)
