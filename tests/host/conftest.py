"""ComfyUI in this process, on the CPU, with this pack loaded the way ComfyUI loads custom nodes.

Set COMFYUI_PATH to a ComfyUI checkout; tests that use the `comfy` fixture are skipped otherwise.
The big generated model files (an SDXL-layout UNet, a PuLID v1.1 checkpoint, an EVA-CLIP tower with
the real widths) are written once into tests/_generated/ and reused by later runs and by both hosts;
everything ComfyUI writes goes to a temporary folder.
"""
import os
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TESTS = os.path.join(ROOT, "tests")
CACHE = os.path.join(TESTS, "_generated", "host_models_v1")
INPAINT_CHECKPOINT = "sdxl_inpaint_test.safetensors"  # a random 9-channel SDXL UNet: the face-fix variant's
PACK_NAME = "pulid_sdxl"  # what the pack folder is called under custom_nodes (the checkout is "main")
# Core nodes outside nodes.py that the shipped workflows and the tests use (ComfyUI loads them at start-up).
EXTRAS = ("nodes_mask.py", "nodes_latent.py", "nodes_preview_any.py", "nodes_model_advanced.py")

from testkit import comfyui_inprocess


def _cached(name, write):
    """tests/_generated/host_models_v1/<name>, written by `write(path)` unless already there."""
    path = os.path.join(CACHE, name)
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        part = path + ".part"
        write(part)
        os.replace(part, path)
    return path


def _link(src, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        os.symlink(src, dst)


def _models(root):
    from testkit import make_face_models, make_pulid, make_sdxl
    import torch

    sdxl = _cached("sdxl_small.safetensors", make_sdxl.write_sdxl_checkpoint)
    inpaint = _cached("sdxl_small_inpaint.safetensors", lambda p: make_sdxl.write_sdxl_checkpoint(p, in_channels=9))
    pulid = _cached("pulid_v1.1.safetensors", lambda p: make_pulid.write_pulid_checkpoint(
        p, version="v1.1", dtype=torch.float16, fmt="safetensors"))
    # Real widths (1024-wide hidden states, 768-d pooled output) so the PuLID encoder accepts them;
    # 20 blocks is the fewest that still has the five blocks PuLID reads.
    eva = _cached("eva02_clip_l_text.pt", lambda p: make_face_models.write_eva_clip_checkpoint(
        p, layout="eva-clip", embed_dim=1024, depth=20))
    _link(sdxl, os.path.join(root, "checkpoints", "sd_xl_base_1.0.safetensors"))
    _link(sdxl, os.path.join(root, "checkpoints", "sdxl_lightning_4step.safetensors"))
    _link(inpaint, os.path.join(root, "checkpoints", INPAINT_CHECKPOINT))
    _link(pulid, os.path.join(root, "pulid", "pulid_v1.1.safetensors"))
    # The file name cubiq's workflows use (testkit/cubiq_workflows.py): a PuLID file is recognised by its contents.
    _link(pulid, os.path.join(root, "pulid", "ip-adapter_pulid_sdxl_fp16.safetensors"))
    _link(eva, os.path.join(root, "clip_vision", "EVA02_CLIP_L_336_psz14_s6B.pt"))
    # As the release zip unpacks: models/insightface/models/antelopev2/antelopev2/*.onnx
    make_face_models.write_antelopev2(os.path.join(root, "insightface", "models", "antelopev2"), nested=True)
    make_face_models.write_facexlib(os.path.join(root, "facexlib"))


def _face_images(folder):
    import cv2
    from testkit import make_face_models

    os.makedirs(folder, exist_ok=True)
    for name, center, side in (("face.png", (336, 304), 128), ("face2.png", (304, 336), 160)):
        image = make_face_models.draw_face(np.full((640, 640, 3), 30, np.uint8), center, side)
        cv2.imwrite(os.path.join(folder, name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """SimpleNamespace(run, validate, nodes, folder_paths, output, models, pack, inpaint_checkpoint) over an in-process ComfyUI."""
    path = os.environ.get("COMFYUI_PATH")
    if not path:
        pytest.skip("COMFYUI_PATH is not set (point it at a ComfyUI checkout to run host tests)")
    comfyui_inprocess.import_comfyui(path)
    import folder_paths
    import nodes

    from testkit import make_sdxl

    make_sdxl.use_small_text_encoders()
    work = tmp_path_factory.mktemp("comfyui")
    models = work / "models"
    _models(str(models))
    # Registered ahead of the pack like extra_model_paths.yaml entries: the pack must merge, not replace.
    for name in ("checkpoints", "clip_vision", "pulid", "insightface", "facexlib", "pulid_sdxl_embeds"):
        folder_paths.add_model_folder_path(name, str(models / name), is_default=True)
    for name in ("input", "output", "temp"):
        (work / name).mkdir()
    folder_paths.set_input_directory(str(work / "input"))
    folder_paths.set_output_directory(str(work / "output"))
    folder_paths.set_temp_directory(str(work / "temp"))
    _face_images(str(work / "input"))

    custom = work / "custom_nodes"
    custom.mkdir()
    os.symlink(ROOT, custom / PACK_NAME)
    # Another pack registering every id and type of the other PuLID packs goes first, as an artist's
    # install with cubiq's and a FLUX PuLID pack would: ours must load and run beside it.
    comfyui_inprocess.load_custom_node(os.path.join(TESTS, "host", "custom_nodes", "pulid_test_clashing_pack"))
    pack = comfyui_inprocess.load_custom_node(custom / PACK_NAME)
    # The attn2 .add() protocol of IPAdapter_plus / InstantID, for the composition tests.
    comfyui_inprocess.load_custom_node(os.path.join(TESTS, "host", "custom_nodes", "pulid_test_attn2_protocol"))
    # Buggy upstream nodes (0..255 images, empty batches) for the hardening tests.
    comfyui_inprocess.load_custom_node(os.path.join(TESTS, "host", "custom_nodes", "pulid_test_bad_inputs"))
    for extra in EXTRAS:
        comfyui_inprocess.load_custom_node(os.path.join(os.path.abspath(path), "comfy_extras", extra),
                                           module_parent="comfy_extras")
    runner = comfyui_inprocess.Runner()

    def validate(prompt):
        return runner.validate(prompt)

    def run(prompt, outputs=None):
        """Validate and execute `prompt` (only the `outputs` node ids when given)."""
        valid = validate(prompt)
        assert valid[0], (valid[1], valid[3])
        executor = runner.execute(prompt, outputs or valid[2])
        assert executor.success, [m for m in executor.status_messages if m[0] == "execution_error"]
        return executor

    return SimpleNamespace(run=run, validate=validate, execute=runner.execute, nodes=nodes, folder_paths=folder_paths,
                           output=work / "output", models=models, pack=pack, inpaint_checkpoint=INPAINT_CHECKPOINT)


@pytest.fixture(scope="session")
def cli_setup(comfy, tmp_path_factory):
    """(models folder, face photo, extra_model_paths.yaml naming the test node folder) for the command-line tools'
    servers: the servers load a test-only custom node that shrinks the text encoders (tests/host/custom_nodes/)."""
    from pathlib import Path

    root = tmp_path_factory.mktemp("cli")
    yaml = root / "extra_model_paths.yaml"
    yaml.write_text(f"pulid_test_nodes:\n    custom_nodes: {os.path.join(TESTS, 'host', 'custom_nodes')}\n")
    return comfy.models, Path(comfy.folder_paths.get_input_directory()) / "face.png", yaml
