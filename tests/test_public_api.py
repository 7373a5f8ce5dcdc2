"""The library's public names, and the direction of the pack's imports: tools -> nodes -> library.

The library (pulid/) imports neither ComfyUI nor the rest of the pack; in nodes/ only the three modules
meant for it (model folders, runtime, the patch) import ComfyUI, the node classes call them.
"""
import ast
import pathlib
import subprocess
import sys

import pulid

PULID_DIR = pathlib.Path(pulid.__file__).parent
ROOT = PULID_DIR.parent
COMFYUI_MODULES = {"comfy", "comfy_api", "comfy_api_nodes", "comfy_config", "comfy_execution", "comfy_extras",
                   "folder_paths", "server", "node_helpers", "latent_preview", "execution", "nodes", "main", "app",
                   "utils", "comfyui_version", "cuda_malloc", "new_updater", "protocol"}
"""ComfyUI's top-level modules and packages (`nodes` included: ComfyUI's own, not ours)."""
NOT_THE_LIBRARY = ("nodes", "pulid_cli", "workflow_files", "tools", "bench", "tests")
COMFYUI_GATEWAYS = {"folders.py", "runtime.py", "patch.py"}


def test_public_names_are_exported():
    for name in ("load_pulid_model", "PulidModel", "id_attention", "load_eva_clip", "FaceEncoder",
                 "IDEmbedding", "encode_identity", "PulidFormatError", "face_similarity", "load_clip_text", "Clip",
                 "prompt_adherence", "preservation", "ChartPoint", "tradeoff_chart"):
        assert name in pulid.__all__ and getattr(pulid, name) is not None


def test_library_never_imports_the_host():
    offenders = [f"{path.name}: {name}" for path in sorted(PULID_DIR.rglob("*.py")) for name in _imports(path)
                 if name.split(".")[0] in COMFYUI_MODULES]
    assert offenders == []


def test_library_imports_nothing_of_the_pack_outside_it():
    """`from ..nodes import x`, `from .. import pulid_cli` or `import tools.y` in pulid/ would turn the arrows
    round: the nodes and the tools use the library, never the reverse (python -m pulid starts the tools as
    a program, see pulid/__main__.py)."""
    assert _outside(PULID_DIR, NOT_THE_LIBRARY) == []


def test_nodes_import_comfyui_only_through_their_gateways():
    """Node classes call folders.py, runtime.py and patch.py; a `comfy`/`folder_paths`/... import anywhere else
    in nodes/ (at the top or inside a function) is a host call that escaped them. The shipped nodes also never
    import the maintenance tools."""
    nodes_dir = ROOT / "nodes"
    comfy = [f"{path.name}: {name}" for path in sorted(nodes_dir.rglob("*.py")) if path.name not in COMFYUI_GATEWAYS
             for name in _imports(path) if name.split(".")[0] in COMFYUI_MODULES]
    assert comfy == []
    assert _outside(nodes_dir, ("pulid_cli", "workflow_files", "tools", "bench", "tests")) == []


def test_workflow_files_serve_the_tools_and_use_only_the_library():
    """The workflow-file library (graph, layout, migration) is what pulid_cli's migrate, tools/relayout.py and the
    tests share; it reads the library's catalog and errors and nothing else of the pack."""
    assert _outside(ROOT / "workflow_files", ("nodes", "pulid_cli", "tools", "bench", "tests", "testkit")) == []


def test_python_m_pulid_runs_the_tools_as_a_program():
    """The first spelling still works from the pack's folder, with the tools' own usage and exit status."""
    run = subprocess.run([sys.executable, "-m", "pulid", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and run.stdout.startswith("usage: python -m pulid_cli"), run.stderr
    run = subprocess.run([sys.executable, "-m", "pulid", "fetch-models", "--models-dir", "no_such_models",
                          "--only", "nope", "--dry-run"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "unknown model 'nope'" in run.stdout + run.stderr


def _imports(path):
    """Absolute imports of a file, wherever they are in it (a function-level import counts too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module or ""


def _outside(folder, forbidden):
    """Imports in `folder` that reach a pack folder in `forbidden`, absolute (`import nodes.x`) or relative
    (`from ..nodes import x`, `from .. import nodes`); a relative import is resolved from the pack's root."""
    offenders = []
    for path in sorted(folder.rglob("*.py")):
        package = path.relative_to(ROOT).parts[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                targets = [node.module or ""]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(package[:max(len(package) + 1 - node.level, 0)] + ((node.module,) if node.module else ()))
                targets = [base] if node.module else [f"{base}.{alias.name}".lstrip(".") for alias in node.names]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in targets if name.split(".")[0] in forbidden]
    return offenders


def test_pack_never_imports_comfyuis_internals():
    """ComfyUI's executor and server change form between releases: the pack reaches them only through
    the node API (nodes/) and the HTTP API (pulid_cli/comfyui.py)."""
    offenders = []
    for folder in ("pulid", "nodes", "pulid_cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            offenders += [f"{folder}/{path.name}: {name}" for name in _imports(path)
                          if name.split(".")[0] in ("execution", "server", "main")]
            if "PromptExecutor" in path.read_text():
                offenders.append(f"{folder}/{path.name}: PromptExecutor")
    assert offenders == []


def test_command_line_tools_never_import_comfyui():
    """pulid_cli talks to ComfyUI as a program; importing it would tie the tools to one release."""
    offenders = [f"{path.name}: {name}" for path in sorted((ROOT / "pulid_cli").rglob("*.py"))
                 for name in _imports(path) if name.split(".")[0] in ("comfy", "folder_paths", "nodes")]
    assert offenders == []
