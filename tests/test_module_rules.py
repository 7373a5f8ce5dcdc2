"""Two house rules read from the source: no module imports another module's private (`_name`) names, and no
module of the command line or of the workflow-file library is past the size where it holds two jobs.

A private name is one its module may change without notice; importing it ties two modules together where
neither says so. The imports are read from each file's syntax tree, so a relative or multi-line import counts
the same as a plain one; dunder names (`__version__`) are public.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pulid", "pulid_cli", "workflow_files", "nodes", "tools", "bench", "testkit")
MAX_LINES = 350  # CONTRIBUTING: a module past ~350 lines holds two jobs


def _modules():
    """The pack's modules; bench/_generated (old commits unpacked by bench.ab, ignored by git) is not the pack."""
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py")
                  if "_generated" not in p.relative_to(ROOT).parts) + [ROOT / "__init__.py"]


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(source):
    """(line, import as written) for each import in `source` that names a private module or name."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            names = [alias.name for alias in node.names]
            if any(_private(part) for part in (node.module or "").split(".")):
                found.append((node.lineno, f"from {module} import {', '.join(names)}"))
            elif any(map(_private, names)):
                found.append((node.lineno, f"from {module} import {', '.join(filter(_private, names))}"))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, f"import {alias.name}") for alias in node.names
                      if any(_private(part) for part in alias.name.split("."))]
    return found


def test_no_module_imports_a_private_name():
    offenders = [f"{path.relative_to(ROOT)}:{line}: {text}" for path in _modules()
                 for line, text in private_imports(path.read_text(encoding="utf-8"))]
    assert not offenders, ("modules import other modules' private names (make the name public where it is "
                           "defined, or move the code that needs it there):\n" + "\n".join(offenders))


@pytest.mark.parametrize("source, caught", [
    ("from x import _y", True),
    ("from . import _y", True),
    ("from ..pulid.x import a, _b", True),
    ("from x import (\n    a,\n    _b,\n)", True),
    ("import x._y", True),
    ("import x._y as z", True),
    ("from x._y import z", True),
    ("def f():\n    from .x import _y", True),
    ("from x import y, __version__", False),
    ("import x.y\nfrom .x import y as _y", False),
])
def test_the_private_import_check_can_fail(source, caught):
    assert bool(private_imports(source)) is caught, source


def test_no_command_line_module_is_past_the_size_of_one_job():
    sizes = {path.relative_to(ROOT): len(path.read_text(encoding="utf-8").splitlines())
             for package in ("pulid_cli", "workflow_files") for path in (ROOT / package).rglob("*.py")}
    assert sizes
    too_long = [f"{path}: {lines} lines" for path, lines in sorted(sizes.items()) if lines > MAX_LINES]
    assert not too_long, f"modules past {MAX_LINES} lines (split them by job):\n" + "\n".join(too_long)
