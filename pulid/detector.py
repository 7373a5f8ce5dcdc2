"""insightface's face detector (antelopev2's SCRFD) on its own: where the faces are, without who they are.

Checking that a photo shows a face, or finding the faces of a picture, needs neither ArcFace nor facexlib nor
EVA-CLIP (together ~1.2 GB): `FaceDetector` loads the one ~17 MB model and answers in boxes and landmarks, the
same `DetectedFace` records (without an embedding) the face encoder works with. `FaceDetector.sharing` wraps the
SCRFD a loaded face encoder already holds, so the region nodes load nothing.
"""
import cv2
import numpy as np

from .face import DET_SIZE, DET_THRESH, DetectedFace, find_antelopev2, load_onnx, resolve_providers, to_rgb_uint8


class FaceDetector:
    """SCRFD, threshold 0.5, at 640x640 unless a call asks for another detection size."""

    def __init__(self, insightface_dir, providers=None):
        detector_path, _ = find_antelopev2(insightface_dir)
        self.model = load_onnx(detector_path, "detection", resolve_providers(providers))
        self.model.prepare(0, input_size=DET_SIZE, det_thresh=DET_THRESH)

    @classmethod
    def sharing(cls, model):
        """A FaceDetector over an SCRFD model already loaded and prepared (the face encoder's `detector`)."""
        detector = cls.__new__(cls)
        detector.model = model
        return detector

    def detect(self, image, image_index=None, size=None):
        """The faces of ``image`` (RGB, uint8 or float 0..1, as given: no resize), in the detector's order.

        ``size``: the square side SCRFD letterboxes the picture into for this call (default: 640, as the face
        encoder). A model exported with a fixed input size keeps its own (insightface ignores the request).
        """
        bgr = cv2.cvtColor(to_rgb_uint8(image, image_index), cv2.COLOR_RGB2BGR)
        input_size = None if size is None else (int(size), int(size))
        boxes, kpss = self.model.detect(bgr, input_size=input_size, max_num=0)
        return [DetectedFace(bbox=tuple(float(v) for v in boxes[i, :4]), score=float(boxes[i, 4]),
                             kps=np.asarray(kpss[i], np.float32), embedding=None)
                for i in range(boxes.shape[0])]
