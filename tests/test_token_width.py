"""The width of an ID token (SDXL's text context, 2048) is written once: pulid/sites.py's CONTEXT_DIM.

Every other module of the library and of nodes/ uses that name, so no number 2048 appears in their code
(docstrings and comments may say it; only int literals count).
"""
import ast
from pathlib import Path

from pulid.sites import CONTEXT_DIM

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / "pulid" / "sites.py"


def literal_lines(path, value):
    return [node.lineno for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and type(node.value) is int and node.value == value]


def test_the_home_holds_the_width():
    assert CONTEXT_DIM == 2048 and literal_lines(HOME, CONTEXT_DIM)


def test_no_other_module_writes_the_width():
    found = [f"{path.relative_to(ROOT)}:{line}" for folder in ("pulid", "nodes")
             for path in sorted((ROOT / folder).rglob("*.py")) if path != HOME
             for line in literal_lines(path, CONTEXT_DIM)]
    assert not found, f"use pulid.sites.CONTEXT_DIM instead of 2048 at: {', '.join(found)}"
