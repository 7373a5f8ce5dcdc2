"""The doctor on a fake ComfyUI models folder of generated files: all OK, then missing/corrupt ones."""
import importlib.metadata
import os
import pathlib
import re
import subprocess
import sys

import pytest
import torch

from testkit import make_face_models, make_pulid
from pulid_cli import doctor, main as cli
from pulid_cli.requirements import Requirement, installed_version, read_requirements
from pulid.catalog import ANTELOPEV2, CATALOG, EVA_CLIP


def _write_onnx(path):
    """A minimal valid ONNX graph (Identity), enough for onnxruntime to open the file."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)


@pytest.fixture(scope="module")
def good_models(tmp_path_factory):
    models = tmp_path_factory.mktemp("comfyui") / "models"
    for sub in ("pulid", "clip_vision", "insightface/models/antelopev2", "facexlib"):
        (models / sub).mkdir(parents=True)
    make_pulid.write_pulid_checkpoint(models / "pulid" / "pulid_v1.1.safetensors", "v1.1",
                                      dtype=torch.float16)
    make_face_models.write_eva_clip_checkpoint(
        str(models / "clip_vision" / "EVA02_CLIP_L_336_psz14_s6B.pt"))
    for member in ANTELOPEV2.members:
        _write_onnx(models / "insightface" / "models" / "antelopev2" / member.filename)
    make_face_models.write_facexlib(str(models / "facexlib"))
    return models


def _by_name(checks):
    return {c.name: c for c in checks}


def test_complete_install_is_ok(good_models, capsys):
    checks = doctor.run_checks(good_models)
    by = _by_name(checks)
    assert not doctor.failed(checks), doctor.format_table(checks)
    assert by["pulid_v1.1.safetensors"].detail.startswith("PuLID v1.1")
    for name in ("EVA02_CLIP_L_336_psz14_s6B.pt", "antelopev2", "detection_Resnet50_Final.pth",
                 "parsing_bisenet.pth", "torch + torchvision", "insightface", "timm"):
        assert by[name].status == doctor.OK, by[name]
    assert by["pulid_v1.bin"].status == doctor.MISSING and not by["pulid_v1.bin"].required

    assert cli.main(["doctor", "--models-dir", str(good_models)]) == 0
    table = capsys.readouterr().out
    assert "optional  pulid_v1.bin" in table and "--only pulid_v1" in table


def test_missing_and_corrupt_files_fail_with_fixes(good_models, tmp_path, capsys):
    models = tmp_path / "models"
    ante = models / "insightface" / "models" / "antelopev2"
    (models / "pulid").mkdir(parents=True)
    (models / "clip_vision").mkdir()
    (models / "facexlib").mkdir()
    (ante / "antelopev2").mkdir(parents=True)
    make_pulid.write_truncated(models / "pulid" / "pulid_v1.1.safetensors")
    for member in ANTELOPEV2.members:  # unzipped one folder too deep, detector broken
        os.symlink(good_models / "insightface" / "models" / "antelopev2" / member.filename,
                   ante / "antelopev2" / member.filename)
    (models / "facexlib" / "detection_Resnet50_Final.pth").write_bytes(os.urandom(4096))
    os.symlink(good_models / "facexlib" / "parsing_bisenet.pth", models / "facexlib" / "parsing_bisenet.pth")

    by = _by_name(doctor.check_models(models))
    pulid = by["pulid_v1.1.safetensors"]
    assert pulid.status == doctor.BROKEN and "pulid_v1.1.safetensors" in pulid.detail
    assert "--only pulid_v1.1" in pulid.fix and str(models) in pulid.fix
    eva = by["EVA02_CLIP_L_336_psz14_s6B.pt"]
    assert eva.status == doctor.MISSING and str(models / "clip_vision") in eva.detail
    assert "--only eva_clip" in eva.fix and "huggingface.co/QuanSun/EVA-CLIP" in eva.fix
    nested = by["antelopev2"]
    assert nested.status == doctor.WARNING and "too deep" in nested.detail and not nested.failed
    assert nested.fix.startswith("mv ") and str(ante / "antelopev2") in nested.fix
    (ante / "antelopev2" / "scrfd_10g_bnkps.onnx").unlink()
    (ante / "antelopev2" / "scrfd_10g_bnkps.onnx").write_bytes(b"not onnx")
    broken = _by_name(doctor.check_models(models))["antelopev2"]
    assert broken.status == doctor.BROKEN and "scrfd_10g_bnkps.onnx does not load" in broken.detail
    assert by["detection_Resnet50_Final.pth"].status == doctor.BROKEN
    assert by["parsing_bisenet.pth"].status == doctor.OK

    assert cli.main(["doctor", "--models-dir", str(models), "--no-load"]) == 1
    table = capsys.readouterr().out
    assert "MISSING   EVA02_CLIP_L_336_psz14_s6B.pt" in table and "fix: cd " in table
    assert cli.main(["doctor", "--comfyui", str(tmp_path / "nowhere")]) == 1
    assert "does not exist" in capsys.readouterr().out


def test_package_problems_give_pip_lines(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("# comment\nno-such-pkg\ntqdm>=999.0\nnumpy>=1.0  # inline comment\n")
    by = _by_name(doctor.check_packages(requirements))
    assert by["no-such-pkg"].status == doctor.MISSING
    assert by["no-such-pkg"].fix.endswith("-m pip install no-such-pkg")
    assert by["tqdm"].status == doctor.BROKEN and "'tqdm>=999.0'" in by["tqdm"].fix
    assert by["numpy"].status == doctor.OK
    assert by["torch + torchvision"].status == doctor.OK  # torch is ComfyUI's: checked, never in the file


def test_rows_derive_from_requirements_txt():
    """One row per requirement, in the file's order, so a requirement added there is checked with no edit here."""
    names = [line.strip().split(">=")[0].split("==")[0] for line in (cli_root() / "requirements.txt").open()
             if line.strip() and not line.startswith("#")]
    rows = [c.name for c in doctor.check_packages() if c.name not in ("torch + torchvision", "onnxruntime providers")]
    assert rows == names and {"open_clip_torch", "matplotlib", "numpy"} <= set(rows)


def test_pillow_minimum_comes_from_the_file(tmp_path):
    """requirements.txt asks pillow>=10.1: an older Pillow is BROKEN, a newer one OK (10.10 > 10.1)."""
    pillow = Requirement("pillow>=10.1", "pillow", ">=", "10.1")
    assert not pillow.allows("10.0.1") and not pillow.allows("9.5") and pillow.allows("10.1")
    assert pillow.allows("10.10.0") and pillow.allows("11.0.0.dev0")
    assert "pillow>=10.1" in [r.line for r in read_requirements(cli_root() / "requirements.txt")]


def test_other_distributions_of_a_module_pass(monkeypatch):
    """opencv-python-headless installs cv2 as opencv-python does: the import name is what is checked, and the
    version is read from whichever distribution is installed."""
    installed = {"opencv-python-headless": "4.10.0.84", "onnxruntime-gpu": "1.20.1"}

    def version(dist):
        if dist not in installed:
            raise importlib.metadata.PackageNotFoundError(dist)
        return installed[dist]

    monkeypatch.setattr(importlib.metadata, "version", version)
    cv = Requirement("opencv-python>=4.9", "opencv-python", ">=", "4.9")
    assert cv.module == "cv2" and installed_version(cv, None) == "4.10.0.84"
    check, _ = doctor.check_requirement(cv)
    assert check.status == doctor.OK and check.detail == "4.10.0.84"
    onnx_gpu = Requirement("onnxruntime", "onnxruntime")
    assert installed_version(onnx_gpu, None) == "1.20.1"
    assert Requirement("open_clip_torch>=3.3", "open_clip_torch", ">=", "3.3").module == "open_clip"


def test_unreadable_requirement_lines_are_a_row(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy<3 ; python_version >= '3.10'\n")
    row = doctor.check_packages(requirements)[-1]
    assert row.status == doctor.BROKEN and "line 1" in row.detail and row.failed
    row = doctor.check_packages(tmp_path / "gone.txt")[-1]
    assert row.status == doctor.BROKEN and row.name == "requirements.txt"


def test_an_import_that_raises_anything_is_reported(tmp_path, monkeypatch):
    """A broken install raises what it likes on import (OSError for a DLL, here RuntimeError): a BROKEN row."""
    (tmp_path / "raises_on_import.py").write_text("raise RuntimeError('DLL load failed')\n")
    (tmp_path / "needs_absent.py").write_text("import no_such_module_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("raises-on-import\nneeds-absent\n")
    by = _by_name(doctor.check_packages(requirements))
    assert by["raises-on-import"].status == doctor.BROKEN and "DLL load failed" in by["raises-on-import"].detail
    assert by["raises-on-import"].fix.endswith("pip install --force-reinstall --no-deps raises-on-import")
    # installed, but a module it imports is not: broken, not missing, and the detail names the absent one
    assert by["needs-absent"].status == doctor.BROKEN and "no_such_module_xyz" in by["needs-absent"].detail


def test_eva_clip_in_models_pulid_is_found(good_models, tmp_path):
    """EVA-CLIP may sit in models/pulid (catalog EVA_CLIP.folders, the loader node lists both): found, loaded."""
    models = tmp_path / "models"
    (models / "pulid").mkdir(parents=True)
    os.symlink(good_models / "clip_vision" / EVA_CLIP.filename, models / "pulid" / EVA_CLIP.filename)
    eva = _by_name(doctor.check_models(models))[EVA_CLIP.filename]
    assert eva.status == doctor.OK and eva.detail.startswith("EVA-CLIP vision tower"), eva
    eva = _by_name(doctor.check_models(models, load=False))[EVA_CLIP.filename]
    assert eva.status == doctor.OK, eva


BLOCKED_RUN = """
import runpy, sys

blocked = sys.argv[1]


class Block:
    \"\"\"Installed before anything else is imported: `blocked` behaves as if it were not installed.\"\"\"

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Block())
sys.argv = ["pulid_cli", *sys.argv[2:]]
runpy.run_module("pulid_cli", run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize("module, row", [("torch", "torch"), ("cv2", "opencv-python"), ("numpy", "numpy"),
                                         ("matplotlib", "matplotlib"), ("open_clip", "open_clip_torch"),
                                         ("insightface", "insightface")])
def test_doctor_reports_an_absent_package_without_a_traceback(good_models, module, row):
    """`python -m pulid_cli doctor` with one package absent: its own MISSING row, exit code 1, no traceback; model
    files whose loader needs it are "not checked (needs X)", never BROKEN (the files are fine)."""
    run = subprocess.run([sys.executable, "-c", BLOCKED_RUN, module, "doctor", "--models-dir", str(good_models)],
                         cwd=cli_root(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in _without_blocker_reports(run.stderr), run.stderr
    rows = {line[10:].split("  ")[0].strip(): line[:8].strip() for line in run.stdout.splitlines()
            if line[:1].strip()}
    assert rows[row] == doctor.MISSING, run.stdout
    model_rows = [c.filename for c in CATALOG if c.required and not c.is_archive] + [ANTELOPEV2.name]
    assert all(rows[name] in (doctor.OK, doctor.SKIPPED) for name in model_rows), run.stdout
    if module == "torch":
        assert f"not checked (needs torch); found in {good_models / 'pulid'}" in run.stdout
        assert all(rows[name] == doctor.SKIPPED for name in model_rows if name != ANTELOPEV2.name), run.stdout


def _without_blocker_reports(stderr):
    """stderr less the tracebacks that compiled packages print for an import they catch (onnxruntime's and torch's
    numpy bridges print the error and go on). A truly absent package's error has import machinery frames only,
    which Python strips, so it prints no "Traceback" line; the blocker's `find_spec` frame adds one. A traceback
    with any other frame (the doctor's, a package's) stays and fails the test."""
    return re.sub(r'Traceback \(most recent call last\):\n  File "<string>", line \d+, in find_spec\n'
                  r'ModuleNotFoundError: [^\n]*\n', "", stderr)


def cli_root():
    return pathlib.Path(doctor.__file__).resolve().parent.parent
