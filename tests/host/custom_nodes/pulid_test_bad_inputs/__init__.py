"""Test-only stand-ins for buggy upstream nodes, so the host tests can feed the pack what a careless graph does:
an IMAGE scaled to 0..255 (a common mistake of other packs) and an IMAGE batch with no image in it."""


class PulidTestScaleImage:
    CATEGORY = "PuLID tests"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "scale"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",), "factor": ("FLOAT", {"default": 255.0, "min": 0.0})}}

    def scale(self, image, factor):
        return (image * factor,)


class PulidTestEmptyImageBatch:
    CATEGORY = "PuLID tests"
    RETURN_TYPES = ("IMAGE",)
    FUNCTION = "empty"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"image": ("IMAGE",)}}

    def empty(self, image):
        return (image[:0],)


NODE_CLASS_MAPPINGS = {"PulidTestScaleImage": PulidTestScaleImage, "PulidTestEmptyImageBatch": PulidTestEmptyImageBatch}
