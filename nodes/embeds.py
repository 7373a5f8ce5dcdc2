"""Save and load ID embeddings, so a face is encoded once and reused in any workflow."""
import os

from ..pulid.embedding import IDEmbedding
from ..pulid.errors import PulidError
from . import aliases, folders


DEFAULT_STEM = "face"


def safe_prefix(root, filename_prefix):
    """(folder inside `root`, file name start) for a filename_prefix; a PulidError for one that leaves `root`.

    An empty name (`""`, `"."`, `"sub/"`) gets the default stem, so the file never lands beside the folder.
    """
    if os.path.isabs(filename_prefix) or os.path.splitdrive(filename_prefix)[0]:
        raise PulidError(f"filename_prefix {filename_prefix!r} is an absolute path; give a name (optionally with "
                         f"subfolders) inside {root}.")
    parts = [p for p in filename_prefix.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PulidError(f"filename_prefix {filename_prefix!r} climbs out with '..'; give a name inside {root}.")
    trailing = not parts or filename_prefix.replace("\\", "/").rstrip().endswith(("/", "/."))
    stem = DEFAULT_STEM if trailing else parts.pop()
    folder = os.path.join(root, *parts)
    if os.path.commonpath([root, os.path.abspath(folder)]) != root:
        raise PulidError(f"filename_prefix {filename_prefix!r} points outside {root}.")
    return folder, stem


class PuLIDSDXLSaveEmbeds:
    SEARCH_ALIASES = aliases.FACE_ID + ['save face', 'save embeddings', 'face embedding file']
    DESCRIPTION = ("Saves PuLID ID embeddings as .safetensors under models/pulid_sdxl_embeds, for Load PuLID "
                   "Embeddings (no face models needed to reuse them).")
    CATEGORY = "PuLID"
    RETURN_TYPES = ()
    RETURN_NAMES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "embeds": ("PULID_SDXL_EMBEDS", {"tooltip": "From Encode Face (PuLID SDXL)."}),
            "filename_prefix": ("STRING", {
                "default": "face",
                "tooltip": "File name start, relative to models/pulid_sdxl_embeds; a counter and .safetensors are "
                           "appended (face_00001.safetensors). Subfolders with / are allowed."}),
        }}

    def save(self, embeds, filename_prefix):
        root = os.path.abspath(folders.embeds_save_dir())
        folder, stem = safe_prefix(root, filename_prefix)
        os.makedirs(folder, exist_ok=True)
        taken = {f for f in os.listdir(folder)}
        counter = 1
        while f"{stem}_{counter:05d}{folders.EMBEDS_EXTENSION}" in taken:
            counter += 1
        path = os.path.join(folder, f"{stem}_{counter:05d}{folders.EMBEDS_EXTENSION}")
        embeds.save(path)
        return {"ui": {"text": [os.path.relpath(path, root)]}}


class PuLIDSDXLLoadEmbeds:
    SEARCH_ALIASES = aliases.FACE_ID + ['load face', 'load embeddings', 'saved face']
    OUTPUT_TOOLTIPS = (
        'The saved identity, for Apply PuLID (SDXL).',
    )
    DESCRIPTION = "Loads ID embeddings saved by Save PuLID Embeddings (SDXL) (files in models/pulid_sdxl_embeds, and models/pulid/embeds of the first release)."
    CATEGORY = "PuLID"
    RETURN_TYPES = ("PULID_SDXL_EMBEDS",)
    RETURN_NAMES = ("embeds",)
    FUNCTION = "load"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "embeds_file": (folders.embeds_files(), {
                "tooltip": "A .safetensors file in models/pulid_sdxl_embeds made by Save PuLID Embeddings (SDXL)."}),
        }}

    def load(self, embeds_file):
        return (IDEmbedding.load(folders.embeds_path(embeds_file)),)
