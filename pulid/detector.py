"""insightface's face detector (antelopev2's SCRFD) on its own: where the faces are, without who they are.

Checking that a photo shows a face, or finding the faces of a picture, needs neither ArcFace nor facexlib nor
EVA-CLIP (together ~1.2 GB): `FaceDetector` loads the one ~17 MB model and answers in boxes and landmarks, the
same `DetectedFace` records (without an embedding) the face encoder works with.
"""
import cv2
import numpy as np

from .face import DET_SIZE, DET_THRESH, DetectedFace, find_antelopev2, load_onnx, resolve_providers, to_rgb_uint8


class FaceDetector:
    """SCRFD at 640x640, threshold 0.5, as the face encoder detects."""

    def __init__(self, insightface_dir, providers=None):
        detector_path, _ = find_antelopev2(insightface_dir)
        self.model = load_onnx(detector_path, "detection", resolve_providers(providers))
        self.model.prepare(0, input_size=DET_SIZE, det_thresh=DET_THRESH)

    def detect(self, image, image_index=None):
        """The faces of ``image`` (RGB, uint8 or float 0..1, as given: no resize), in the detector's order."""
        boxes, kpss = self.model.detect(cv2.cvtColor(to_rgb_uint8(image, image_index), cv2.COLOR_RGB2BGR), max_num=0)
        return [DetectedFace(bbox=tuple(float(v) for v in boxes[i, :4]), score=float(boxes[i, 4]),
                             kps=np.asarray(kpss[i], np.float32), embedding=None)
                for i in range(boxes.shape[0])]
