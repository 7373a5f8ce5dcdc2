"""An output node for host tests: whatever reaches it is kept as the nodes made it (no PNG round trip).

Host tests put a `PulidTestCapture` node on the outputs they read, run the prompt through the executor and read
`CAPTURED[tag]`: a dict of the inputs that were connected ("image", "mask", "model"...).
"""
import contextlib

NAME = "PulidTestCapture"
CAPTURED = {}
INPUTS = {"image": "IMAGE", "mask": "MASK", "latent": "LATENT", "count": "INT", "model": "MODEL",
          "embeds": "PULID_SDXL_EMBEDS", "geometry": "PULID_SDXL_FACE_CROP"}


class Capture:
    CATEGORY = "PuLID tests"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "keep"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"tag": ("STRING", {"default": "x"})},
                "optional": {name: (kind,) for name, kind in INPUTS.items()}}

    def keep(self, tag, **values):
        CAPTURED[tag] = values
        return {}


@contextlib.contextmanager
def registered(comfy):
    """The capture node in the in-process host's node list while the block runs."""
    comfy.nodes.NODE_CLASS_MAPPINGS[NAME] = Capture
    try:
        yield CAPTURED
    finally:
        del comfy.nodes.NODE_CLASS_MAPPINGS[NAME]
