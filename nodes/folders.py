"""ComfyUI's model folders for the pack: registering them, listing their files, finding the file a node asked for.

The only module of nodes/ that reaches `folder_paths`. The node classes stay importable without ComfyUI
(the node contract tests, the help pages and the command line read them), so `folder_paths` is imported
when first used and the lists fall back to the default names when ComfyUI is absent. File names and the
fetch command come from the library's catalog.
"""
import os

from ..pulid.catalog import EVA_CLIP, FETCH_COMMAND, INSIGHTFACE_MODEL, PULID_V1_1
from ..pulid.errors import ModelFileError
from ..pulid.detector import antelopev2_not_found, antelopev2_paths

PULID_EXTENSIONS = {".bin", ".safetensors", ".pt", ".pth"}
EMBEDS_FOLDER = "pulid_sdxl_embeds"
"""The models folder of saved embeddings (models/pulid_sdxl_embeds), a name no other pack uses: the other
PuLID packs list models/pulid recursively and would offer embeddings kept there as model files."""
LEGACY_EMBEDS_SUBFOLDER = "embeds"
"""models/pulid/embeds, where the first release saved embeddings: still listed and loaded, never written."""
EMBEDS_EXTENSION = ".safetensors"

# Shown when a folder is still empty, so the node runs into an error that says what to download
# instead of the host's bare "value not in list".
DEFAULT_PULID_FILE = PULID_V1_1.filename
DEFAULT_EVA_CLIP_FILE = EVA_CLIP.filename
DEFAULT_INSIGHTFACE = INSIGHTFACE_MODEL


def _folder_paths():
    try:
        import folder_paths
    except ImportError:
        return None
    return folder_paths


def register_folders():
    """models/pulid, models/facexlib, models/insightface and models/pulid_sdxl_embeds (+ the legacy
    models/pulid/embeds), merged with any extra_model_paths entry."""
    fp = _folder_paths()
    if fp is None:
        return
    for name, extensions in (("pulid", PULID_EXTENSIONS), ("facexlib", set()), ("insightface", set()),
                             (EMBEDS_FOLDER, {EMBEDS_EXTENSION})):
        fp.add_model_folder_path(name, os.path.join(fp.models_dir, name))
        paths, known = fp.folder_names_and_paths[name]
        # Another pack may have registered the same name with its own extensions: keep theirs too.
        fp.folder_names_and_paths[name] = (paths, set(known) | extensions)
    for pulid_root in list(fp.get_folder_paths("pulid")):
        legacy = os.path.join(pulid_root, LEGACY_EMBEDS_SUBFOLDER)
        if legacy not in fp.get_folder_paths(EMBEDS_FOLDER):
            fp.folder_names_and_paths[EMBEDS_FOLDER][0].append(legacy)


def _files(folder):
    fp = _folder_paths()
    if fp is None or folder not in fp.folder_names_and_paths:
        return []
    return list(fp.get_filename_list(folder))


def _is_embeds(name):
    return name.replace("\\", "/").startswith(LEGACY_EMBEDS_SUBFOLDER + "/")


class Installed(list):
    """Combo choices read from the model folders: a plain list to ComfyUI, marked because they differ per
    install, so the help pages (tools/help_pages.py) say where they come from instead of listing them."""


def pulid_files():
    files = [f for f in _files("pulid") if not _is_embeds(f)]
    return Installed(files or [DEFAULT_PULID_FILE])


def eva_clip_files():
    files = sorted({f for folder in EVA_CLIP.folders for f in _files(folder)
                    if not (folder == PULID_V1_1.folder and _is_embeds(f))})
    return Installed(files or [DEFAULT_EVA_CLIP_FILE])


NO_EMBEDS = "(no saved embeddings yet)"


def embeds_files():
    files = [f for f in _files(EMBEDS_FOLDER) if f.endswith(EMBEDS_EXTENSION)]
    return Installed(files or [NO_EMBEDS])


def _folders_text(folder):
    fp = _folder_paths()
    paths = fp.get_folder_paths(folder) if fp is not None and folder in fp.folder_names_and_paths else []
    return ", ".join(paths) or f"models/{folder}"


def _full_path(folders, name, what):
    fp = _folder_paths()
    for folder in folders:
        if fp is not None and folder in fp.folder_names_and_paths:
            path = fp.get_full_path(folder, name)
            if path:
                return path
    where = "; ".join(_folders_text(f) for f in folders)
    raise ModelFileError(f"{what} {name!r} was not found in {where}. Download it there, e.g. with `{FETCH_COMMAND}`.")


def pulid_path(name):
    return _full_path(["pulid"], name, "PuLID model file")


def eva_clip_path(name):
    return _full_path(EVA_CLIP.folders, name, "EVA-CLIP file")


def embeds_path(name):
    if name == NO_EMBEDS:
        raise ModelFileError(f"No saved PuLID embeddings in {embeds_save_dir()}. Run a graph with Save PuLID "
                             f"Embeddings (SDXL) once (e.g. the pulid_save_embeds workflow), then reload this node.")
    return _full_path([EMBEDS_FOLDER], name, "Saved PuLID embedding")


def embeds_save_dir():
    fp = _folder_paths()
    if fp is None or EMBEDS_FOLDER not in fp.folder_names_and_paths:
        return os.path.join("models", EMBEDS_FOLDER)
    return fp.get_folder_paths(EMBEDS_FOLDER)[0]


def _model_roots(folder):
    fp = _folder_paths()
    if fp is None or folder not in fp.folder_names_and_paths:
        return []
    return list(fp.get_folder_paths(folder))


def insightface_models():
    names = set()
    for root in _model_roots("insightface"):
        models = os.path.join(root, "models")
        if os.path.isdir(models):
            names.update(d for d in os.listdir(models) if os.path.isdir(os.path.join(models, d)))
    # antelopev2 first: it is what PuLID was trained with, and the default of the widget.
    return Installed([DEFAULT_INSIGHTFACE] + sorted(names - {DEFAULT_INSIGHTFACE}))


def insightface_dir(name):
    """models/insightface/models/<name> (or its antelopev2/ child, as the zip unpacks) holding the antelopev2
    files, in the first models root that has them; else the first such folder that exists, so the face encoder's
    error names it and the files it lacks. Every case words the error with `detector.antelopev2_not_found`."""
    folders = [os.path.join(root, "models", name) for root in _model_roots("insightface")]
    for folder in folders:
        paths = antelopev2_paths(folder)
        if paths is not None:
            return os.path.dirname(paths[0])
    for folder in folders:
        if os.path.isdir(folder):
            return folder
    raise antelopev2_not_found(", ".join(folders) or f"models/insightface/models/{name}")


def facexlib_dir():
    """The first models/facexlib folder that holds .pth files (else the first one, for the error)."""
    roots = _model_roots("facexlib")
    for root in roots:
        if os.path.isdir(root) and any(f.endswith(".pth") for f in os.listdir(root)):
            return root
    if roots:
        return roots[0]
    raise ModelFileError(f"No models/facexlib folder is registered. Download the facexlib weights with `{FETCH_COMMAND}`.")
