"""Check an install: Python packages, every model file, the GPU; each problem comes with its fix.

`run_checks` returns a list of `Check` records rather than printing, so `generate` and the ComfyUI
nodes can show the same messages. Model files are opened with the same loaders the pack uses, so a
truncated download or a wrong file shows up here and not in the middle of a render.
"""
import importlib
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from pulid.catalog import (ANTELOPEV2, ANTELOPEV2_DETECTOR, ANTELOPEV2_RECOGNIZER, CATALOG, EVA_CLIP,
                           FACEXLIB_DETECTION, FACEXLIB_PARSING, ModelFile)

from .fetch import target_path


OK, MISSING, BROKEN, WARNING = "OK", "MISSING", "BROKEN", "WARNING"
PACK_DIR = Path(__file__).resolve().parent.parent

# (import name, pip name, minimum version or None); kept in step with requirements.txt.
PACKAGES = (
    ("insightface", "insightface", None),
    ("onnxruntime", "onnxruntime", None),
    ("facexlib", "facexlib", "0.3"),
    ("timm", "timm", "1.0.15"),
    ("safetensors", "safetensors", "0.4"),
    ("einops", "einops", None),
    ("cv2", "opencv-python", None),
    ("PIL", "pillow", None),
    ("tqdm", "tqdm", None),
)
ANTELOPE_USED = (ANTELOPEV2_DETECTOR.filename, ANTELOPEV2_RECOGNIZER.filename)


@dataclass
class Check:
    area: str  # "package", "model" or "gpu"
    name: str
    status: str  # OK, MISSING, BROKEN or WARNING
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


def pip_command(spec) -> str:
    return f"{shlex.quote(sys.executable)} -m pip install {shlex.quote(spec)}"


def _version_tuple(text):
    parts = []
    for piece in str(text).split("+")[0].split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_packages() -> list[Check]:
    checks = [_check_torch_pair()]
    for module, pip_name, minimum in PACKAGES:
        spec = f"{pip_name}>={minimum}" if minimum else pip_name
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # a broken install raises anything, not only ImportError
            checks.append(Check("package", pip_name, MISSING, f"cannot import {module}: {exc}",
                                pip_command(spec)))
            continue
        version = getattr(mod, "__version__", "?")
        if minimum and _version_tuple(version) < _version_tuple(minimum):
            checks.append(Check("package", pip_name, BROKEN, f"{version} is older than {minimum}",
                                pip_command(spec)))
        else:
            checks.append(Check("package", pip_name, OK, str(version)))
        if module == "onnxruntime":
            checks.append(_check_onnx_providers(mod))
    return checks


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
        path = target_path(entry, models_dir)
        fix = fetch_command(models_dir, [entry.name]) + f"   (or download {entry.urls[0]} into {path.parent})"
        if not path.is_file():
            checks.append(Check("model", entry.filename, MISSING, f"not found in {path.parent}", fix,
                                required=entry.required))
            continue
        if not load:
            checks.append(Check("model", entry.filename, OK, f"present ({_size(path)})",
                                required=entry.required))
            continue
        try:
            detail = _load(entry, path)
        except Exception as exc:  # every loader failure is reported, whatever its type
            checks.append(Check("model", entry.filename, BROKEN, f"{path} does not load: {_first_line(exc)}",
                                "delete it and run: " + fix, required=entry.required))
        else:
            checks.append(Check("model", entry.filename, OK, detail, required=entry.required))
    return checks


def _load(entry: ModelFile, path: Path) -> str:
    if entry.folder == "pulid":
        from pulid.checkpoint import load_pulid_model

        model = load_pulid_model(path)
        return f"PuLID {model.version} ({model.layout} layout, {str(model.checkpoint_dtype).replace('torch.', '')})"
    if entry.filename == EVA_CLIP.filename:
        from pulid.eva_clip import load_eva_clip

        model = load_eva_clip(path)
        return f"EVA-CLIP vision tower, {sum(p.numel() for p in model.parameters()) / 1e6:.0f}M parameters"
    if entry.filename == FACEXLIB_DETECTION.filename:
        from facexlib.detection import init_detection_model

        init_detection_model("retinaface_resnet50", device="cpu", model_rootpath=str(path.parent))
        return "RetinaFace-ResNet50 loads"
    if entry.filename == FACEXLIB_PARSING.filename:
        from facexlib.parsing import init_parsing_model

        init_parsing_model("bisenet", device="cpu", model_rootpath=str(path.parent))
        return "BiSeNet loads"
    return f"present ({_size(path)})"


def _check_archive(entry: ModelFile, models_dir: Path, load: bool) -> Check:
    folder = target_path(entry, models_dir)
    names = [m.filename for m in entry.members]
    used = ANTELOPE_USED if entry.name == ANTELOPEV2.name else tuple(names)
    fix = fetch_command(models_dir, [entry.name])
    where, moved_fix = folder, ""
    inner = folder / folder.name  # the release zip unpacked as is: antelopev2/antelopev2/
    if not all((folder / n).is_file() for n in used) and all((inner / n).is_file() for n in used):
        where = inner
        moved_fix = (f"mv {shlex.quote(str(inner))}/*.onnx {shlex.quote(str(folder))}/ && "
                     f"rmdir {shlex.quote(str(inner))}")
    missing = [n for n in names if not (where / n).is_file()]
    missing_used = [n for n in missing if n in used]
    if missing_used:
        return Check("model", entry.name, MISSING, f"{', '.join(missing_used)} not found in {folder}",
                     fix, required=entry.required)
    if load:
        import onnxruntime

        for name in used:
            try:
                onnxruntime.InferenceSession(str(where / name), providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own exception types
                return Check("model", entry.name, BROKEN,
                             f"{where / name} does not load: {_first_line(exc)}",
                             f"delete {folder} and run: {fix}", required=entry.required)
    if moved_fix:
        return Check("model", entry.name, WARNING,
                     f"the files are one folder too deep, in {inner} (the pack finds them there, "
                     f"other packs may not)", moved_fix, required=False)
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
