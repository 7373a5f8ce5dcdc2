"""The repo imported as ComfyUI imports a custom node: a package under an arbitrary name, with one library.

Modules of nodes/ use relative imports (`..pulid`), so tests reach them through this package. Outside
ComfyUI the library is also importable as top-level `pulid` (tests, pulid_cli, bench/), and two copies
would mean two PulidError classes: an `except pulid.errors.PulidError` would miss what nodes/ raises.
So before the pack runs, import_pack() registers the top-level `pulid` modules under the pack's names too
(`pulid_sdxl_pack.pulid.errors is pulid.errors`): one set of module objects, whichever name is used.
"""
import importlib
import importlib.util
import os
import pkgutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACK = "pulid_sdxl_pack"
LIBRARY = "pulid"


def import_pack():
    """The repo as package PACK (what ComfyUI loads), its `pulid` being the top-level one."""
    if PACK not in sys.modules:
        spec = importlib.util.spec_from_file_location(PACK, os.path.join(ROOT, "__init__.py"),
                                                      submodule_search_locations=[ROOT])
        module = importlib.util.module_from_spec(spec)
        module.pulid = _share_library()
        sys.modules[PACK] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            for name in [n for n in sys.modules if n == PACK or n.startswith(PACK + ".")]:
                del sys.modules[name]
            raise
    return sys.modules[PACK]


def pack_module(name):
    """A module of the pack by its path inside it, e.g. "nodes.attn2" or "pulid.embedding"."""
    import_pack()
    return importlib.import_module(f"{PACK}.{name}")


def _share_library():
    """Import every module of the top-level library and register each under PACK's name as well.

    All of them, not only those pulid/__init__ imports: a submodule first reached through the pack's name
    after this would otherwise be loaded a second time. `__main__` is the command line, not a module.
    """
    library = importlib.import_module(LIBRARY)
    if os.path.dirname(os.path.abspath(library.__file__)) != os.path.join(ROOT, LIBRARY):
        raise ImportError(f"top-level {LIBRARY!r} is {library.__file__}, not this repo's; "
                          "run from the repo root (pytest's pythonpath, python -m)")
    for info in pkgutil.walk_packages(library.__path__, LIBRARY + "."):
        if not info.name.endswith(".__main__"):
            importlib.import_module(info.name)
    for name, module in list(sys.modules.items()):
        if name == LIBRARY or name.startswith(LIBRARY + "."):
            sys.modules[f"{PACK}.{name}"] = module
    return library
