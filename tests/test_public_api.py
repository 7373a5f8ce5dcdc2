"""The library's public names, and its independence from ComfyUI."""
import ast
import pathlib

import pulid

PULID_DIR = pathlib.Path(pulid.__file__).parent


def test_public_names_are_exported():
    for name in ("load_pulid_model", "PulidModel", "id_attention", "load_eva_clip", "FaceEncoder",
                 "IDEmbedding", "encode_identity", "PulidFormatError", "face_similarity"):
        assert name in pulid.__all__ and getattr(pulid, name) is not None


def test_library_never_imports_the_host():
    offenders = [f"{path.name}: {name}" for path in sorted(PULID_DIR.rglob("*.py")) for name in _imports(path)
                 if name.split(".")[0] in ("comfy", "folder_paths", "nodes", "execution", "server")]
    assert offenders == []


def _imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module or ""


def test_pack_never_imports_comfyuis_internals():
    """ComfyUI's executor and server change form between releases: the pack reaches them only through
    the node API (nodes/) and the HTTP API (pulid_cli/comfyui.py)."""
    root = PULID_DIR.parent
    offenders = []
    for folder in ("pulid", "nodes", "pulid_cli"):
        for path in sorted((root / folder).rglob("*.py")):
            offenders += [f"{folder}/{path.name}: {name}" for name in _imports(path)
                          if name.split(".")[0] in ("execution", "server", "main")]
            if "PromptExecutor" in path.read_text():
                offenders.append(f"{folder}/{path.name}: PromptExecutor")
    assert offenders == []


def test_command_line_tools_never_import_comfyui():
    """pulid_cli talks to ComfyUI as a program; importing it would tie the tools to one release."""
    offenders = [f"{path.name}: {name}" for path in sorted((PULID_DIR.parent / "pulid_cli").rglob("*.py"))
                 for name in _imports(path) if name.split(".")[0] in ("comfy", "folder_paths", "nodes")]
    assert offenders == []
