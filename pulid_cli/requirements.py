"""The pack's Python requirements as the doctor checks them: read from requirements.txt, found by import name.

requirements.txt, at the pack's root, is the one list (ComfyUI-Manager and pip install from it; pyproject.toml
repeats it and tests/test_dependencies.py keeps the two equal), so the doctor reads it at run time instead of
keeping a copy. A requirement is checked by importing the module it installs: pip names differ from import names
(opencv-python installs cv2), and several distributions install the same module (opencv-python-headless,
onnxruntime-gpu), any of which serves. Standard library only: the doctor must run on a broken install.
"""
import importlib.metadata
import re
from dataclasses import dataclass

IMPORT_NAMES = {"opencv-python": "cv2", "pillow": "PIL", "open-clip-torch": "open_clip"}
"""Normalized pip name -> the module it installs, where that is not the pip name with `_` for `-`."""

DISTRIBUTIONS = {
    "opencv-python": ("opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
    "onnxruntime": ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino", "onnxruntime-silicon"),
    "pillow": ("pillow-simd",),
}
"""Normalized pip name -> the other distributions that install the same module, whose version counts as well."""

_LINE = re.compile(r"(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:(?P<op>>=|==)\s*(?P<version>[0-9][0-9A-Za-z.+!-]*))?")


def normalize(name) -> str:
    """A pip name as the package index compares it (PEP 503): `Open_CLIP.torch` and `open-clip-torch` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    line: str  # as written in the file: what `pip install` gets
    name: str  # the pip name as written
    op: str = ""  # ">=", "==" or "" (any version)
    version: str = ""

    @property
    def module(self) -> str:
        """The top-level module it installs: what the doctor imports."""
        key = normalize(self.name)
        return IMPORT_NAMES.get(key, key.replace("-", "_"))

    @property
    def distributions(self) -> tuple[str, ...]:
        """The distribution names whose installed version counts, the one written first."""
        return (self.name, *DISTRIBUTIONS.get(normalize(self.name), ()))

    def allows(self, version) -> bool:
        if not self.op:
            return True
        have, want = version_tuple(version), version_tuple(self.version)
        width = max(len(have), len(want))
        have, want = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
        return have >= want if self.op == ">=" else have == want


def read_requirements(path) -> list[Requirement]:
    """Every requirement in a requirements file; ValueError for a line in a form the doctor cannot check."""
    requirements = []
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, 1):
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            match = _LINE.fullmatch(line)
            if match is None:
                raise ValueError(f"{path}, line {number}: {line!r} is not `name`, `name>=version` or "
                                 f"`name==version`, the forms the doctor checks")
            requirements.append(Requirement(line, match["name"], match["op"] or "", match["version"] or ""))
    return requirements


def installed_version(requirement: Requirement, module) -> str | None:
    """The version of the first installed distribution of `requirement`, else the module's `__version__`."""
    for dist in requirement.distributions:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    version = getattr(module, "__version__", None)
    return None if version is None else str(version)


def version_tuple(text) -> tuple[int, ...]:
    """The leading numeric release of a version string: "2.1.0+cu121" -> (2, 1, 0), "1.0rc1" -> (1, 0)."""
    parts = []
    for piece in str(text).split("+")[0].split("."):
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() < len(piece):
            break
    return tuple(parts)
