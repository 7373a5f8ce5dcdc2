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
    offenders = []
    for path in sorted(PULID_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            offenders += [f"{path.name}: {n}" for n in names
                          if n.split(".")[0] in ("comfy", "folder_paths", "nodes", "execution", "server")]
    assert offenders == []
