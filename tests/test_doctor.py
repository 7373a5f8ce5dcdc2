"""The doctor on a fake ComfyUI models folder of generated files: all OK, then missing/corrupt ones."""
import os

import pytest
import torch

from testkit import make_face_models, make_pulid
from pulid_cli import doctor, main as cli
from pulid.catalog import ANTELOPEV2


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


def test_package_problems_give_pip_lines(monkeypatch):
    monkeypatch.setattr(doctor, "PACKAGES", (("no_such_module_xyz", "no-such-pkg", None),
                                             ("tqdm", "tqdm", "999.0")))
    by = _by_name(doctor.check_packages())
    assert by["no-such-pkg"].status == doctor.MISSING
    assert by["no-such-pkg"].fix.endswith("-m pip install no-such-pkg")
    assert by["tqdm"].status == doctor.BROKEN and "'tqdm>=999.0'" in by["tqdm"].fix
