"""The repo imported as ComfyUI imports a custom node: a package under an arbitrary name.

Modules of nodes/ use relative imports (`..pulid`), so tests reach them, and the library classes they
use, through this package: `pack.pulid.errors.PulidError` is the class nodes/ raises, not `pulid.errors`'s.
"""
import importlib
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK = "pulid_sdxl_pack"


def import_pack():
    if PACK not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACK, os.path.join(ROOT, "__init__.py"),
                                                      submodule_search_locations=[ROOT])
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK] = module
        spec.loader.exec_module(module)
    return sys.modules[PACK]


def pack_module(name):
    """A module of the pack by its path inside it, e.g. "nodes.attn2" or "pulid.embedding"."""
    import_pack()
    return importlib.import_module(f"{PACK}.{name}")
