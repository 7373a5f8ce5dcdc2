"""Check an install: Python packages, every model file, the GPU; each problem comes with its fix.

`run_checks` returns a list of `Check` records rather than printing, so `generate` and the ComfyUI
nodes can show the same messages. Model files are opened with the same loaders the pack uses, so a
truncated download or a wrong file shows up here and not in the middle of a render.

It runs on a broken install, which is when it is needed: it imports only the standard library and the
library's light modules (pulid.catalog, pulid.errors) at the top; each package and each loader is imported
inside a check, and whatever that raises becomes a row. The packages are the rows of requirements.txt (plus
torch, which ComfyUI owns). A model file whose loader cannot be imported (torch missing, say) is SKIPPED:
"not checked (needs torch)", not a failure of its own, since the package row already fails the run.
"""
import importlib
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from pulid.catalog import (ANTELOPEV2, ANTELOPEV2_DETECTOR, ANTELOPEV2_RECOGNIZER, CATALOG, EVA_CLIP,
                           FACEXLIB_DETECTION, FACEXLIB_PARSING, PULID_V1_1, ModelFile, find_installed)

from .fetch import target_path
from .requirements import Requirement, installed_version, read_requirements

OK, MISSING, BROKEN, WARNING = "OK", "MISSING", "BROKEN", "WARNING"
SKIPPED = "SKIPPED"
"""A model file that is present but could not be opened because a package its loader needs is missing."""
PACK_DIR = Path(__file__).resolve().parent.parent
REQUIREMENTS_FILE = PACK_DIR / "requirements.txt"
ANTELOPE_USED = (ANTELOPEV2_DETECTOR.filename, ANTELOPEV2_RECOGNIZER.filename)


@dataclass
class Check:
    area: str  # "package", "model" or "gpu"
    name: str
    status: str  # OK, MISSING, BROKEN, WARNING or SKIPPED
    detail: str
    fix: str = ""
    required: bool = True

    @property
    def failed(self) -> bool:
        return self.required and self.status in (MISSING, BROKEN)


def failed(checks) -> bool:
    return any(c.failed for c in checks)


def run_checks(models_dir, *, load: bool = True, packages: bool = True, gpu: bool = True) -> list[Check]:
    checks = []
    if packages:
        checks += check_packages()
    checks += check_models(models_dir, load=load)
    if gpu:
        checks += check_gpu()
    return checks


def fetch_command(models_dir, names) -> str:
    """The exact command that installs `names` into `models_dir`."""
    return (f"cd {shlex.quote(str(PACK_DIR))} && {shlex.quote(sys.executable)} -m pulid_cli fetch-models "
            f"--models-dir {shlex.quote(str(models_dir))} --only {','.join(names)}")


def pip_command(spec, *, reinstall: bool = False) -> str:
    """`pip install spec` for this Python; `reinstall`: of that package alone (--no-deps keeps ComfyUI's torch)."""
    again = "--force-reinstall --no-deps " if reinstall else ""
    return f"{shlex.quote(sys.executable)} -m pip install {again}{shlex.quote(spec)}"


def check_packages(requirements_file=REQUIREMENTS_FILE) -> list[Check]:
    """torch, then one row per line of requirements.txt (and the providers onnxruntime really has)."""
    checks = [_check_torch_pair()]
    try:
        requirements = read_requirements(requirements_file)
    except (OSError, ValueError) as exc:
        return checks + [Check("package", "requirements.txt", BROKEN, f"cannot read the pack's requirements: {exc}",
                               "install the pack again: requirements.txt is part of it")]
    for requirement in requirements:
        check, module = check_requirement(requirement)
        checks.append(check)
        if requirement.module == "onnxruntime" and module is not None:
            checks.append(_check_onnx_providers(module))
    return checks


def check_requirement(requirement: Requirement):
    """(the row, the imported module or None): the module is imported by its import name, so any distribution
    of it passes (opencv-python-headless for opencv-python); whatever the import raises is reported."""
    fix = pip_command(requirement.line)
    name = requirement.module
    try:
        module = importlib.import_module(name)
    except Exception as exc:  # a broken install raises anything: OSError for a DLL, AttributeError, ...
        if _missing_module(exc) == name:  # not when it is installed but something it imports is not
            return Check("package", requirement.name, MISSING, f"not installed (cannot import {name})", fix), None
        return Check("package", requirement.name, BROKEN, f"installed, but import {name} fails: {_first_line(exc)}",
                     pip_command(requirement.line, reinstall=True)), None
    version = installed_version(requirement, module)
    if version is None:
        if requirement.op:
            return Check("package", requirement.name, WARNING,
                         f"version unknown, needs {requirement.op}{requirement.version}", fix, required=False), module
        return Check("package", requirement.name, OK, "installed (version unknown)"), module
    if not requirement.allows(version):
        return Check("package", requirement.name, BROKEN,
                     f"{version} installed, needs {requirement.op}{requirement.version}", fix), module
    return Check("package", requirement.name, OK, version), module


def _check_torch_pair() -> Check:
    try:
        import torch
    except Exception as exc:
        return Check("package", "torch", MISSING, f"cannot import torch: {exc}",
                     "install ComfyUI's requirements; torch comes with ComfyUI")
    try:
        import torchvision
        from torchvision.ops import nms

        nms(torch.zeros(1, 4), torch.zeros(1), 0.5)  # loads torchvision's compiled ops
    except Exception as exc:
        return Check("package", "torch + torchvision", BROKEN,
                     f"torch {torch.__version__}: torchvision does not load with it ({exc})",
                     f"install the torchvision release built for torch {torch.__version__} from the "
                     f"same package index (same CUDA build), see pytorch.org/get-started/previous-versions")
    return Check("package", "torch + torchvision", OK,
                 f"torch {torch.__version__}, torchvision {torchvision.__version__}")


def _check_onnx_providers(onnxruntime) -> Check:
    providers = onnxruntime.get_available_providers()
    detail = ", ".join(providers)
    gpu_providers = [p for p in providers if p not in ("CPUExecutionProvider", "AzureExecutionProvider")]
    if gpu_providers:
        return Check("package", "onnxruntime providers", OK, detail)
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:
        has_cuda = False
    if has_cuda:
        return Check("package", "onnxruntime providers", WARNING,
                     f"{detail}: face detection runs on the CPU (same result, slower)",
                     f"{pip_command('onnxruntime-gpu')} (after pip uninstall onnxruntime)", required=False)
    return Check("package", "onnxruntime providers", OK, detail)


def check_models(models_dir, *, load: bool = True, catalog=CATALOG) -> list[Check]:
    """One check per catalog entry: present, and (with `load`) opened with the pack's loader."""
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return [Check("model", "models folder", MISSING, f"{models_dir} does not exist",
                      "point --comfyui at the ComfyUI folder (the one holding main.py and models/), "
                      "or --models-dir at its models folder")]
    checks = []
    for entry in catalog:
        if entry.is_archive:
            checks.append(_check_archive(entry, models_dir, load))
            continue
        target = target_path(entry, models_dir)
        fix = fetch_command(models_dir, [entry.name]) + f"   (or download {entry.urls[0]} into {target.parent})"
        found = find_installed(entry, models_dir)
        if found is None:
            where = " or ".join(str(Path(models_dir, *f.split("/"))) for f in entry.folders)
            checks.append(Check("model", entry.filename, MISSING, f"not found in {where}", fix,
                                required=entry.required))
            continue
        path = Path(found, entry.filename)
        if not load:
            checks.append(Check("model", entry.filename, OK, f"present ({_size(path)})",
                                required=entry.required))
            continue
        try:
            open_file = _loader(entry)
        except Exception as exc:  # a missing or broken package: the package rows say which and how to fix it
            checks.append(_not_checked(entry.filename, path, exc, entry.required))
            continue
        try:
            detail = open_file(path)
        except Exception as exc:  # every loader failure is reported, whatever its type
            if _missing_module(exc):  # a package the loader imports as it goes (timm for EVA-CLIP), not the file
                checks.append(_not_checked(entry.filename, path, exc, entry.required))
                continue
            checks.append(Check("model", entry.filename, BROKEN, f"{path} does not load: {_first_line(exc)}",
                                "delete it and run: " + fix, required=entry.required))
        else:
            checks.append(Check("model", entry.filename, OK, detail, required=entry.required))
    return checks


def _loader(entry: ModelFile):
    """The function that opens `entry`'s file with the pack's loader and says what it holds. Importing the loader
    happens here, apart from the loading: a package that is missing does not make the file broken."""
    if entry.folder == PULID_V1_1.folder:
        from pulid.checkpoint import load_pulid_model

        return lambda path: _pulid_detail(load_pulid_model(path))
    if entry.filename == EVA_CLIP.filename:
        from pulid.eva_clip import load_eva_clip

        return lambda path: (f"EVA-CLIP vision tower, "
                             f"{sum(p.numel() for p in load_eva_clip(path).parameters()) / 1e6:.0f}M parameters")
    if entry.filename == FACEXLIB_DETECTION.filename:
        from facexlib.detection import init_detection_model

        return lambda path: _loads(init_detection_model, "retinaface_resnet50", path, "RetinaFace-ResNet50 loads")
    if entry.filename == FACEXLIB_PARSING.filename:
        from facexlib.parsing import init_parsing_model

        return lambda path: _loads(init_parsing_model, "bisenet", path, "BiSeNet loads")
    return lambda path: f"present ({_size(path)})"


def _pulid_detail(model) -> str:
    return f"PuLID {model.version} ({model.layout} layout, {str(model.checkpoint_dtype).replace('torch.', '')})"


def _loads(init, name, path, detail) -> str:
    init(name, device="cpu", model_rootpath=str(path.parent))
    return detail


def _not_checked(name, where, exc, required, package=None) -> Check:
    """The row of a present file whose loader could not be imported: "not checked (needs torch)"."""
    module = _missing_module(exc) or package
    reason = f"needs {module}" if module else f"its loader does not import: {_first_line(exc)}"
    return Check("model", name, SKIPPED, f"not checked ({reason}); found in {where}",
                 "fix the package rows above, then run the doctor again", required=required)


def _missing_module(exc) -> str | None:
    """The top-level module a failed import lacks (a ModuleNotFoundError's name), else None."""
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        return exc.name.split(".")[0]
    return None


def _check_archive(entry: ModelFile, models_dir: Path, load: bool) -> Check:
    folder = target_path(entry, models_dir)
    names = [m.filename for m in entry.members]
    used = ANTELOPE_USED if entry.name == ANTELOPEV2.name else tuple(names)
    fix = fetch_command(models_dir, [entry.name])
    found = find_installed(entry, models_dir, used)
    if found is None:
        missing_used = [n for n in used if not (folder / n).is_file()]
        return Check("model", entry.name, MISSING, f"{', '.join(missing_used)} not found in {folder}",
                     fix, required=entry.required)
    where = Path(found)
    if load:
        try:
            import onnxruntime
        except Exception as exc:  # the onnxruntime package row says what to install
            return _not_checked(entry.name, where, exc, entry.required, "onnxruntime")
        for name in used:
            try:
                onnxruntime.InferenceSession(str(where / name), providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types
                return Check("model", entry.name, BROKEN,
                             f"{where / name} does not load: {_first_line(exc)}",
                             f"delete {folder} and run: {fix}", required=entry.required)
    if where != folder:  # the zip unpacked as is (catalog.member_dirs)
        return Check("model", entry.name, WARNING,
                     f"the files are one folder too deep, in {where} (the pack finds them there, "
                     f"other packs may not)",
                     f"mv {shlex.quote(str(where))}/*.onnx {shlex.quote(str(folder))}/ && "
                     f"rmdir {shlex.quote(str(where))}", required=False)
    missing = [n for n in names if not (where / n).is_file()]
    if missing:
        return Check("model", entry.name, WARNING,
                     f"{', '.join(missing)} missing from {folder} (PuLID does not use them)",
                     fix, required=False)
    return Check("model", entry.name, OK, f"{len(names)} files in {folder}" + (", load" if load else ""),
                 required=entry.required)


def check_gpu() -> list[Check]:
    try:
        import torch
    except Exception:
        return []  # the torch package check already reports it
    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        name = torch.cuda.get_device_name(index)
        free, total = torch.cuda.mem_get_info(index)
        detail = f"{name}, {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB"
        if total < 8 * 2**30:
            return [Check("gpu", "GPU", WARNING, detail + ": SDXL with PuLID is tight below 8 GiB",
                          "start ComfyUI with --lowvram", required=False)]
        return [Check("gpu", "GPU", OK, detail)]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return [Check("gpu", "GPU", OK, "Apple MPS")]
    return [Check("gpu", "GPU", WARNING, "CPU only: it works, but one SDXL image takes many minutes",
                  "install the CUDA build of torch if this machine has an NVIDIA GPU", required=False)]


def format_table(checks) -> str:
    """One plain-text table: status, what, details; the fix under each line that has one."""
    width = max([len(c.name) for c in checks] + [5])
    lines = []
    for c in checks:
        status = "optional" if c.status == MISSING and not c.required else c.status
        lines.append(f"{status:8}  {c.name:{width}}  {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"{'':8}  {'':{width}}  fix: {c.fix}")
    bad = sum(c.failed for c in checks)
    warn = sum(c.status != OK and not c.failed for c in checks)
    lines.append("")
    lines.append(f"{bad} problem(s), {warn} warning(s)" if bad or warn else "Everything is in place.")
    return "\n".join(lines)


def _size(path) -> str:
    return f"{os.path.getsize(path) / 1e6:,.1f} MB"


def _first_line(exc) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__
