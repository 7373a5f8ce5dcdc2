"""Assign Face: reference photo k and the mask of the k-th face from the left, for the k-th Apply PuLID.

One node per person; the photo and the mask of a person leave the same node, so they cannot be paired wrongly.
Only the face encoder's detector runs. The rule (fewer faces than references: an error; more: the rest keep the
first pass's look) lives in `pulid.assign`.
"""
from ..pulid.assign import check_person, face_of_person
from ..pulid.detector import MAX_FACES
from ..pulid.image_input import checked_batch
from ..pulid.regions import ALL_FACES, MaskShape, check_region, detect_faces, face_masks
from .regions import ALIASES, MASK_DEFAULTS, each_picture, mask_inputs


class PuLIDSDXLAssignFace:
    SEARCH_ALIASES = ALIASES + ["assign face", "group photo", "several people", "multiple people", "two people",
                                "multi person", "regional identity"]
    DESCRIPTION = ("For pictures of several people: reference photo `person` (1 = first of the batch) and the mask "
                   "of the `person`-th face from the left of each picture, for one Apply PuLID's embeddings and "
                   "attn_mask. Use one node per person, all fed the same references, and chain their Apply nodes "
                   "into a second pass over the picture. Fewer faces than references is an error naming both "
                   "counts; faces beyond the references get no identity and keep the look the first pass drew.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("IMAGE", "MASK", "INT")
    RETURN_NAMES = ("reference", "mask", "faces")
    OUTPUT_TOOLTIPS = ("This person's reference photo: connect it to Encode Face (PuLID SDXL).",
                       "This person's face, one mask per picture, the pictures' size: Apply PuLID's attn_mask.",
                       "The fewest faces any picture shows (at least the number of references).")
    FUNCTION = "assign"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "face_encoder": ("PULID_SDXL_FACE_ENCODER", {
                "tooltip": "From Load PuLID Face Encoder (SDXL): only its face detector is used."}),
            "images": ("IMAGE", {"tooltip": "The first pass's pictures of the group (a batch)."}),
            "references": ("IMAGE", {
                "tooltip": "One photo per person, in the order the people stand from the left (a batch: Batch "
                           "Images resizes the second photo to the first's size, so use photos of one shape)."}),
            "person": ("INT", {
                "default": 1, "min": 1, "max": MAX_FACES, "step": 1,
                "tooltip": "Which person: reference photo number `person` and the `person`-th face from the left."}),
            **mask_inputs(MASK_DEFAULTS),
        }, "optional": {
            "mask": ("MASK", {
                "tooltip": "Optional: only faces whose centre lies in this mask count (to leave out a crowd in the "
                           "background). Same size as the pictures; an empty mask restricts nothing."}),
        }}

    def assign(self, face_encoder, images, references, person, grow, shape, feather, mask=None):
        checked_batch(images)
        checked_batch(references, "references")
        check_person(person, len(references))
        within = check_region(mask, images)
        faces = detect_faces(face_encoder.encoder.detector, images, ALL_FACES, skip_faceless=True, within=within,
                             each=each_picture(len(images)))
        chosen = face_of_person(faces, person, len(references))
        masks = face_masks(chosen, images.shape[1], images.shape[2], MaskShape(grow, shape, feather))
        return (references[person - 1:person], masks.to(images.device), min(len(found) for found in faces))
