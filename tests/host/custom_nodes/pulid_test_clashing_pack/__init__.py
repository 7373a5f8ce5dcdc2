"""Test-only stand-in for the other PuLID packs users install beside ours: it registers every node id and
type they use (testkit/other_pulid_packs.py) and the "pulid" models folder the way cubiq's pack does
(writing folder_paths' table directly, with its own extensions). Loaded before ours in the host tests,
our nodes and workflows must still load and run.
"""
import os
import sys

import folder_paths

# This runs inside a ComfyUI server process, whose sys.path has ComfyUI's folder and not this repo, so the
# repo root goes on it to import testkit. Appended, not prepended: the repo's nodes/ folder must never
# shadow ComfyUI's nodes.py.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.realpath(__file__))))))
if ROOT not in sys.path:
    sys.path.append(ROOT)

from testkit.other_pulid_packs import PACKS  # noqa: E402


def _node(node_id, types):
    output = sorted(types)[0]
    return type(node_id, (), {
        "INPUT_TYPES": classmethod(lambda cls: {"required": {t.lower(): (t,) for t in sorted(types)}}),
        "RETURN_TYPES": (output,), "FUNCTION": "run", "CATEGORY": "pulid_test_clash",
        "run": lambda self, **kwargs: (None,)})


NODE_CLASS_MAPPINGS = {}
NODE_DISPLAY_NAME_MAPPINGS = {}
for pack in PACKS.values():
    for node_id, name in pack["ids"].items():
        NODE_CLASS_MAPPINGS[node_id] = _node(node_id, pack["types"])
        NODE_DISPLAY_NAME_MAPPINGS[node_id] = name

current = folder_paths.folder_names_and_paths.get("pulid", ([], set()))[0]
folder_paths.folder_names_and_paths["pulid"] = (
    current + [os.path.join(folder_paths.models_dir, "pulid")], folder_paths.supported_pt_extensions)
