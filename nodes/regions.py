"""Face regions of existing pictures: Face Mask, and Crop Face / Paste Face around a detail pass.

Only the face encoder's detector runs (onnxruntime): its torch modules are never loaded onto the GPU here, and
who the faces are (ArcFace, EVA-CLIP) plays no part. The work is in `pulid.regions` and `pulid.face_crop`.
"""
from ..pulid.image_input import checked_batch
from ..pulid.face_crop import WORKING_SIZES, CropSettings, crop_faces, paste_faces
from ..pulid.regions import REGION_CHOICES, SHAPES, MaskShape, check_region, detect_faces, face_masks
from . import aliases, runtime

FACE_CROP = "PULID_SDXL_FACE_CROP"
ALIASES = aliases.FACE_ID + ["face detailer", "detailer", "face fix", "inpaint face", "face restore", "adetailer"]
MASK_DEFAULTS = MaskShape()
CROP_DEFAULTS = CropSettings()


def face_choice(default):
    return (list(REGION_CHOICES), {
        "default": default,
        "tooltip": "Which faces: all of them, the largest, or the n-th from the left, from the top or by size."})


def mask_inputs(defaults):
    """grow, shape, feather: the same three widgets on Face Mask and Crop Face, each with its own defaults."""
    return {
        "grow": ("FLOAT", {
            "default": defaults.grow, "min": 0.5, "max": 4.0, "step": 0.05,
            "tooltip": "The face box grown by this factor around its centre (1: the detector's box, which ends "
                       "at the brows and chin; 1.3 takes in forehead, jaw and ears)."}),
        "shape": (list(SHAPES), {
            "default": defaults.shape,
            "tooltip": "ellipse follows a head; box covers the whole grown box."}),
        "feather": ("INT", {
            "default": defaults.feather, "min": 0, "max": 256, "step": 1,
            "tooltip": "Pixels over which the mask fades to 0 outside the grown shape (in the picture's pixels); "
                       "beyond them it is exactly 0."}),
    }


def each_picture(count):
    """The per-picture callback of `detect_faces`: stops on Cancel, moves the progress bar."""
    bar = runtime.progress(count)

    def step(index):
        runtime.check_interrupted()
        bar.update_absolute(index, count)
    return step


class PuLIDSDXLFaceMask:
    SEARCH_ALIASES = ALIASES + ["face mask", "face segmentation", "detect face", "face bbox"]
    DESCRIPTION = ("A mask of the chosen face(s) in each picture, at the picture's size: the detected face box "
                   "grown, as an ellipse or a box, fading out over `feather` pixels. Feed it to "
                   "SetLatentNoiseMask, InpaintModelConditioning or Apply PuLID's attn_mask. Only the face "
                   "detector runs. A picture without the chosen face gets an empty mask; `faces` counts them.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("MASK", "INT")
    RETURN_NAMES = ("mask", "faces")
    OUTPUT_TOOLTIPS = ("One mask per picture, the pictures' size: 1 on the face, 0 away from it.",
                       "How many faces the masks cover, over the whole batch (0: none found).")
    FUNCTION = "mask"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "face_encoder": ("PULID_SDXL_FACE_ENCODER", {
                "tooltip": "From Load PuLID Face Encoder (SDXL): only its face detector is used."}),
            "images": ("IMAGE", {"tooltip": "The pictures to find the faces in (a batch)."}),
            "face": face_choice("all"),
            **mask_inputs(MASK_DEFAULTS),
        }}

    def mask(self, face_encoder, images, face, grow, shape, feather):
        checked_batch(images)
        faces = detect_faces(face_encoder.encoder.detector, images, face, skip_faceless=True,
                             each=each_picture(len(images)))
        masks = face_masks(faces, images.shape[1], images.shape[2], MaskShape(grow, shape, feather))
        return (masks.to(images.device), sum(len(found) for found in faces))


class PuLIDSDXLCropFace:
    SEARCH_ALIASES = ALIASES + ["crop face", "face crop", "upscale face", "face region"]
    DESCRIPTION = ("Crops the chosen face(s) of each picture to a square with context around them and resizes it "
                   "to the working size, for a detail pass at a resolution SDXL can draw a likeness at. Outputs "
                   "the crop, the feathered face mask in crop space (for SetLatentNoiseMask or "
                   "InpaintModelConditioning) and the geometry PuLID Paste Face (SDXL) puts the result back with.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("IMAGE", "MASK", FACE_CROP)
    RETURN_NAMES = ("crop", "mask", "geometry")
    OUTPUT_TOOLTIPS = ("The face crop of each picture, working_size x working_size.",
                       "The feathered face mask in crop space: where the detail pass may change the picture.",
                       "Where each crop came from: connect it to PuLID Paste Face (SDXL).")
    FUNCTION = "crop"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "face_encoder": ("PULID_SDXL_FACE_ENCODER", {
                "tooltip": "From Load PuLID Face Encoder (SDXL): only its face detector is used."}),
            "images": ("IMAGE", {"tooltip": "The pictures whose face to detail (a batch: one crop per picture)."}),
            "face": face_choice("largest"),
            "context": ("FLOAT", {
                "default": CROP_DEFAULTS.context, "min": 1.0, "max": 8.0, "step": 0.1,
                "tooltip": "Crop side = the faces' long side x this: 2 keeps hair, neck and some background, so "
                           "the sampler sees where the face sits."}),
            "working_size": ("INT", {
                "default": CROP_DEFAULTS.working_size, "min": WORKING_SIZES[0], "max": WORKING_SIZES[1], "step": 8,
                "tooltip": "The crop's side in pixels for the detail pass: 1024 is SDXL's native size."}),
            **mask_inputs(CROP_DEFAULTS.mask),
            "skip_faceless": ("BOOLEAN", {
                "default": False,
                "tooltip": "On: a picture without the chosen face passes through unchanged (its mask is empty). "
                           "Off: such a picture is an error naming its index."}),
        }, "optional": {
            "mask": ("MASK", {
                "tooltip": "Optional: only faces whose centre lies in this mask are candidates (paint it in Load "
                           "Image's mask editor). Same size as the pictures; an empty mask restricts nothing."}),
        }}

    def crop(self, face_encoder, images, face, context, working_size, grow, shape, feather, skip_faceless,
             mask=None):
        checked_batch(images)
        within = check_region(mask, images)
        settings = CropSettings(context, working_size, MaskShape(grow, shape, feather))
        faces = detect_faces(face_encoder.encoder.detector, images, face, skip_faceless=skip_faceless, within=within,
                             each=each_picture(len(images)))
        crops, masks, geometry = crop_faces(images, faces, settings)
        return (crops, masks, geometry)


class PuLIDSDXLPasteFace:
    SEARCH_ALIASES = ALIASES + ["paste face", "face paste", "composite face", "uncrop"]
    DESCRIPTION = ("Puts the detailed face crops back into the original pictures: each crop is resized to its "
                   "box and blended through the feathered face mask. Every pixel where the mask is 0 keeps its "
                   "exact value, so the rest of the picture is untouched.")
    CATEGORY = "PuLID"
    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("images",)
    OUTPUT_TOOLTIPS = ("The original pictures with the detailed faces pasted in.",)
    FUNCTION = "paste"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "images": ("IMAGE", {"tooltip": "The original pictures, the ones PuLID Crop Face (SDXL) cut from."}),
            "crop": ("IMAGE", {
                "tooltip": "The detailed crops (e.g. from VAE Decode), one per picture, any size: each is resized "
                           "back to its box."}),
            "geometry": (FACE_CROP, {"tooltip": "From PuLID Crop Face (SDXL)."}),
        }}

    def paste(self, images, crop, geometry):
        return (paste_faces(images, crop, geometry),)
