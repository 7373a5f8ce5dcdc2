"""One list of dependencies, and the light start of what must run on a broken install.

requirements.txt / requirements-test.txt are what ComfyUI-Manager, `make venv` and the doctor read; pyproject.toml
repeats them for the registry and pip: the two must say the same. `import pulid`, its errors and catalog, the
doctor and `python -m pulid_cli --help` must import none of the heavy packages, so the doctor can report them
missing instead of dying on them.
"""
import importlib
import json
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
HEAVY = ("torch", "cv2", "numpy", "matplotlib", "open_clip", "insightface")


def _requirements(name):
    lines = (line.split(" #", 1)[0].strip() for line in (ROOT / name).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _pyproject_arrays():
    """([project].dependencies, [project.optional-dependencies].test), by tomllib (Python 3.11+)."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib is Python 3.11+; tomli is not a test requirement")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return project["dependencies"], project["optional-dependencies"]["test"]


def test_pyproject_lists_the_requirements_files():
    dependencies, test = _pyproject_arrays()
    assert dependencies == _requirements("requirements.txt")
    assert test == _requirements("requirements-test.txt")


def test_the_doctor_reads_every_requirement():
    """Every line of requirements.txt is in a form the doctor checks (else its run shows a BROKEN row)."""
    from pulid_cli.requirements import read_requirements

    assert [r.line for r in read_requirements(ROOT / "requirements.txt")] == _requirements("requirements.txt")


LIGHT_START = """
import json, sys

heavy = set(sys.argv[1].split(","))
asked = []


class Record:
    \"\"\"Sees every import that is not yet loaded; blocks the heavy ones, so one caught by a try still shows.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in heavy:
            asked.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Record())
import pulid, pulid.errors, pulid.catalog, pulid_cli.doctor
from pulid_cli.main import main

try:
    main(["--help"])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "asked": asked,
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in heavy),
                  "public": len(pulid.__all__)}))
"""


def test_the_library_and_the_command_line_start_light():
    run = subprocess.run([sys.executable, "-c", LIGHT_START, ",".join(HEAVY)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["code"] == 0 and "usage: python -m pulid_cli" in run.stdout
    assert result["asked"] == [] and result["loaded"] == []
    assert result["public"] > 20


def test_public_names_load_on_first_use():
    """The lazy exports keep every public name: each resolves to the object of the submodule that defines it, and
    dir() lists them; an unknown name is still an AttributeError."""
    import pkgutil

    import pulid

    modules = [importlib.import_module(info.name) for info in pkgutil.iter_modules(pulid.__path__, "pulid.")
               if not info.name.endswith("__main__")]
    assert len(set(pulid.__all__)) == len(pulid.__all__)
    for name in pulid.__all__:
        value = getattr(pulid, name)
        assert any(getattr(module, name, None) is value for module in modules), name
        assert name in dir(pulid)
    with pytest.raises(AttributeError, match="no_such_name"):
        pulid.no_such_name  # noqa: B018


def test_light_modules_import_only_the_standard_library():
    """pulid/errors.py, pulid/catalog.py and pulid_cli/requirements.py are what the doctor stands on."""
    for path in (ROOT / "pulid" / "errors.py", ROOT / "pulid" / "catalog.py", ROOT / "pulid_cli" / "requirements.py"):
        imported = re.findall(r"^(?:from|import) ([\w.]+)", path.read_text(encoding="utf-8"), re.MULTILINE)
        assert all(name.split(".")[0] in sys.stdlib_module_names for name in imported), (path.name, imported)
