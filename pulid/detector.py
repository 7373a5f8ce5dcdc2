"""Where the faces are, without who they are: insightface's face detector (antelopev2's SCRFD) on its own.

Checking that a photo shows a face, or finding the faces of a picture, needs neither ArcFace nor facexlib nor
EVA-CLIP (together ~1.2 GB): `FaceDetector` loads the one ~17 MB model and answers in `DetectedFace` records
(boxes and landmarks; the face encoder adds the ArcFace embedding to the faces it encodes). The face encoder
detects through it too, so there is one detection path. This module also holds what a face is chosen by (the
face choices) and how the antelopev2 files and onnxruntime providers are found.
"""
import os
from dataclasses import dataclass

import cv2
import numpy as np

from .catalog import ANTELOPEV2, ANTELOPEV2_DETECTOR, ANTELOPEV2_RECOGNIZER, FETCH_COMMAND, member_dirs
from .errors import FaceNotFoundError, ModelFileError, PulidError, PulidFormatError
from .image_input import to_rgb_uint8

MAX_FACES = 8
FACE_ORDERS = ("left-to-right", "top-to-bottom", "size")
FACE_CHOICES = ["largest"] + [f"{order} #{i}" for order in FACE_ORDERS for i in range(1, MAX_FACES + 1)]

DET_SIZE = (640, 640)
DET_THRESH = 0.5

ANTELOPE_FILES = (ANTELOPEV2_DETECTOR.filename, ANTELOPEV2_RECOGNIZER.filename)
ANTELOPE_HINT = (f"Download {ANTELOPEV2.filename} (e.g. {' or '.join(ANTELOPEV2.urls)}) and unzip it into "
                 f"ComfyUI/models/{ANTELOPEV2.folder}, or run `{FETCH_COMMAND}`.")
PROVIDER_NAMES = {
    "CPU": "CPUExecutionProvider",
    "CUDA": "CUDAExecutionProvider",
    "ROCM": "ROCMExecutionProvider",
    "CoreML": "CoreMLExecutionProvider",
    "DirectML": "DmlExecutionProvider",
}
PROVIDER_PACKAGES = {
    "CUDAExecutionProvider": "pip install onnxruntime-gpu (and uninstall plain onnxruntime)",
    "ROCMExecutionProvider": "pip install onnxruntime-rocm",
    "DmlExecutionProvider": "pip install onnxruntime-directml",
    "CoreMLExecutionProvider": "use the macOS build of onnxruntime (pip install onnxruntime on a Mac)",
}
# "auto" prefers a GPU; TensorRT is left out because it needs its own libraries to even start.
AUTO_ORDER = ("CUDAExecutionProvider", "ROCMExecutionProvider", "DmlExecutionProvider", "CoreMLExecutionProvider")


@dataclass
class DetectedFace:
    bbox: tuple  # (x1, y1, x2, y2) in image pixels
    score: float
    kps: np.ndarray  # [5, 2]: left eye, right eye, nose, left and right mouth corner
    embedding: np.ndarray  # raw ArcFace embedding, float32 [512] (not normalised); None until computed

    @property
    def area(self):
        return max(0.0, self.bbox[2] - self.bbox[0]) * max(0.0, self.bbox[3] - self.bbox[1])


# ---------------------------------------------------------------------------------- face choice
def parse_face_choice(choice):
    """'largest' -> ('size', 0); 'left-to-right #2' -> ('left-to-right', 1)."""
    if choice in (None, "", "largest"):
        return "size", 0
    text = str(choice).strip()
    order, _, number = text.rpartition(" #")
    if order in FACE_ORDERS and number.isdigit() and int(number) >= 1:
        return order, int(number) - 1
    raise PulidError(f"Unknown face choice {choice!r}. Use one of: {', '.join(FACE_CHOICES[:2])}, ... "
                     f"(orders: largest, {', '.join(FACE_ORDERS)}; numbers from #1).")


def order_faces(faces, order):
    """Faces sorted for a choice order: by box centre x, by box centre y, or largest area first."""
    if order == "left-to-right":
        return sorted(faces, key=lambda f: (f.bbox[0] + f.bbox[2]) / 2)
    if order == "top-to-bottom":
        return sorted(faces, key=lambda f: (f.bbox[1] + f.bbox[3]) / 2)
    # Same tie rule as the official sorted(..., key=area)[-1].
    return sorted(faces, key=lambda f: f.area)[::-1]


def select_face(faces, choice, image_index=None):
    order, index = parse_face_choice(choice)
    if index >= len(faces):
        where = f" in image {image_index}" if image_index is not None else ""
        raise FaceNotFoundError(
            f"Face '{choice}' was asked for, but only {len(faces)} face(s) were found{where}. "
            f"Pick a smaller number or another image.", image_index)
    return order_faces(faces, order)[index]


# ---------------------------------------------------------------------------------- providers
def resolve_providers(providers=None):
    """onnxruntime provider list from None/"auto", a short name ("CUDA"...) or a list of names."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if providers is None or providers == "auto":
        gpu = [p for p in AUTO_ORDER if p in available][:1]
        return gpu + ["CPUExecutionProvider"]
    names = [providers] if isinstance(providers, str) else list(providers)
    resolved = [PROVIDER_NAMES.get(name, name) for name in names]
    for name in resolved:
        if name not in available:
            hint = PROVIDER_PACKAGES.get(name, "install an onnxruntime build that has it")
            raise PulidError(f"ONNX provider {name} is not available in this onnxruntime "
                             f"(available: {', '.join(available)}). To get it: {hint}. Or choose 'auto' or 'CPU'.")
    if "CPUExecutionProvider" not in resolved:
        resolved.append("CPUExecutionProvider")
    return resolved


def antelopev2_not_found(where, missing=ANTELOPE_FILES):
    """The one error for a missing, empty or incomplete antelopev2 folder, whoever finds it (the library, the
    loader node) and whatever is missing, so it reads like the README's troubleshooting row."""
    return ModelFileError(f"insightface antelopev2 not found in {where}: missing {', '.join(missing)}. {ANTELOPE_HINT}")


def antelopev2_paths(folder):
    """(detector, recognizer) paths in `folder` or its nested antelopev2/ (the zip unpacked as is: the catalog's
    `member_dirs`, the rule the nodes and the doctor follow too), else None."""
    for candidate in member_dirs(ANTELOPEV2, folder):
        paths = tuple(os.path.join(candidate, name) for name in ANTELOPE_FILES)
        if all(os.path.isfile(p) for p in paths):
            return paths
    return None


def find_antelopev2(folder):
    """`antelopev2_paths`, or `antelopev2_not_found` naming the files missing from the fuller of the two folders."""
    found = antelopev2_paths(folder)
    if found is not None:
        return found
    missing = min(([n for n in ANTELOPE_FILES if not os.path.isfile(os.path.join(candidate, n))]
                   for candidate in member_dirs(ANTELOPEV2, folder)), key=len)
    raise antelopev2_not_found(os.fspath(folder), missing)


def load_onnx(path, task, providers):
    from insightface.model_zoo import model_zoo

    try:
        model = model_zoo.get_model(path, providers=providers)
    except Exception as exc:  # onnx/onnxruntime raise several unrelated types for a bad file
        raise PulidFormatError(f"{path}: cannot be loaded as an ONNX model ({str(exc).strip()[:200]}). "
                               f"The file may be truncated; download it again. {ANTELOPE_HINT}") from exc
    if model is None or getattr(model, "taskname", None) != task:
        found = getattr(model, "taskname", "an unknown model")
        raise PulidFormatError(f"{path}: expected the antelopev2 {task} model, found {found}. {ANTELOPE_HINT}")
    return model


class FaceDetector:
    """SCRFD, threshold 0.5, at 640x640 unless a call asks for another detection size."""

    def __init__(self, insightface_dir, providers=None):
        detector_path, _ = find_antelopev2(insightface_dir)
        self.model = load_onnx(detector_path, "detection", resolve_providers(providers))
        self.model.prepare(0, input_size=DET_SIZE, det_thresh=DET_THRESH)
        # insightface may build its fixed-size session on first use: do it now, not in a call.
        self.model.detect(np.zeros((DET_SIZE[1], DET_SIZE[0], 3), np.uint8), max_num=0)

    def detect(self, image, image_index=None, size=None):
        """The faces of ``image`` (RGB, uint8 or float 0..1, as given: no resize), in the detector's order.

        ``size``: the square side SCRFD letterboxes the picture into for this call (default: 640, as the face
        encoder). A model exported with a fixed input size keeps its own (insightface ignores the request).
        """
        return self.detect_bgr(cv2.cvtColor(to_rgb_uint8(image, image_index), cv2.COLOR_RGB2BGR), size)

    def detect_bgr(self, bgr, size=None):
        """The faces of a BGR uint8 picture (what insightface reads), without embeddings."""
        input_size = None if size is None else (int(size), int(size))
        boxes, kpss = self.model.detect(bgr, input_size=input_size, max_num=0)
        return [DetectedFace(bbox=tuple(float(v) for v in boxes[i, :4]), score=float(boxes[i, 4]),
                             kps=np.asarray(kpss[i], np.float32), embedding=None)
                for i in range(boxes.shape[0])]
