"""The node definitions as ComfyUI's V1 API reads them, checked without ComfyUI installed.

Node ids, input names and widget order are a public contract (saved workflows store widget values
by position), so they are spelled out here: a change must be deliberate and show up in this test.
"""
import inspect
import sys
from pathlib import Path

import pytest

from testkit.pack import PACK, import_pack

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
OUR_TYPES = {"PULID_SDXL_MODEL", "PULID_SDXL_FACE_ENCODER", "PULID_SDXL_EMBEDS", "PULID_SDXL_FACE_CROP"}
HOST_TYPES = {"MODEL", "IMAGE", "MASK"}

CONTRACT = {  # node id -> (display name, required inputs in order, optional inputs, outputs)
    "PuLIDSDXLModelLoader": ("Load PuLID Model (SDXL)", ["pulid_file"], [], ["PULID_SDXL_MODEL"]),
    "PuLIDSDXLFaceEncoderLoader": ("Load PuLID Face Encoder (SDXL)", ["eva_clip_file", "insightface_model", "provider"], [],
                               ["PULID_SDXL_FACE_ENCODER"]),
    "PuLIDSDXLEncodeFace": ("Encode Face (PuLID SDXL)", ["pulid_model", "face_encoder", "image", "face", "multi_image", "noise",
                                                "skip_faceless"], [], ["PULID_SDXL_EMBEDS", "IMAGE"]),
    "PuLIDSDXLApply": ("Apply PuLID (SDXL)", ["model", "pulid_model", "embeds", "weight", "method", "start_at", "end_at"],
                   ["attn_mask"], ["MODEL"]),
    "PuLIDSDXLApplyAdvanced": ("Apply PuLID Advanced (SDXL)", ["model", "pulid_model", "embeds", "weight", "start_at", "end_at",
                                                      "num_zero", "ortho"], ["attn_mask"], ["MODEL"]),
    "PuLIDSDXLSaveEmbeds": ("Save PuLID Embeddings (SDXL)", ["embeds", "filename_prefix"], [], []),
    "PuLIDSDXLLoadEmbeds": ("Load PuLID Embeddings (SDXL)", ["embeds_file"], [], ["PULID_SDXL_EMBEDS"]),
    "PuLIDSDXLFaceSimilarity": ("Face Similarity (PuLID SDXL)", ["face_encoder", "reference", "images", "face"], [],
                            ["FLOAT", "STRING", "IMAGE"]),
    "PuLIDSDXLEvaluate": ("Evaluate PuLID Batch (SDXL)", ["face_encoder", "reference", "images", "prompt", "face"],
                          ["baseline", "labels", "mask"], ["FLOAT", "FLOAT", "FLOAT", "STRING", "IMAGE", "IMAGE"]),
    "PuLIDSDXLFaceMask": ("PuLID Face Mask (SDXL)", ["face_encoder", "images", "face", "grow", "shape", "feather"], [],
                          ["MASK", "INT"]),
    "PuLIDSDXLCropFace": ("PuLID Crop Face (SDXL)", ["face_encoder", "images", "face", "context", "working_size", "grow",
                                                     "shape", "feather", "skip_faceless"], ["mask"],
                          ["IMAGE", "MASK", "PULID_SDXL_FACE_CROP"]),
    "PuLIDSDXLPasteFace": ("PuLID Paste Face (SDXL)", ["images", "crop", "geometry"], [], ["IMAGE"]),
    "PuLIDSDXLBestByLikeness": ("PuLID Best by Likeness (SDXL)", ["face_encoder", "images", "reference", "k", "face"],
                                [], ["IMAGE", "STRING", "STRING"]),
    "PuLIDSDXLAssignFace": ("PuLID Assign Face (SDXL)", ["face_encoder", "images", "references", "person", "grow",
                                                         "shape", "feather"], ["mask"], ["IMAGE", "MASK", "INT"]),
}


@pytest.fixture(scope="module")
def pack():
    return import_pack()


def test_mappings_match_contract(pack):
    assert list(pack.NODE_CLASS_MAPPINGS) == list(CONTRACT)
    assert pack.NODE_DISPLAY_NAME_MAPPINGS == {k: v[0] for k, v in CONTRACT.items()}


@pytest.mark.parametrize("node_id", list(CONTRACT))
def test_node_definition(pack, node_id):
    cls = pack.NODE_CLASS_MAPPINGS[node_id]
    _, required, optional, outputs = CONTRACT[node_id]
    spec = cls.INPUT_TYPES()
    assert set(spec) <= {"required", "optional", "hidden"}
    assert list(spec["required"]) == required
    assert list(spec.get("optional", {})) == optional
    assert cls.CATEGORY == "PuLID" and isinstance(cls.DESCRIPTION, str) and len(cls.DESCRIPTION) > 20
    assert list(cls.RETURN_TYPES) == outputs
    assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES) and len(set(cls.RETURN_NAMES)) == len(cls.RETURN_NAMES)
    assert getattr(cls, "OUTPUT_NODE", False) == (not outputs)
    assert not hasattr(cls, "IS_CHANGED"), "IS_CHANGED would defeat ComfyUI's cache of the encoded face"

    params = inspect.signature(getattr(cls, cls.FUNCTION)).parameters
    assert list(params)[1:] == required + optional
    assert all(params[name].default is None for name in optional)

    for name, (kind, *rest) in {**spec["required"], **spec.get("optional", {})}.items():
        opts = rest[0] if rest else {}
        assert isinstance(opts.get("tooltip"), str) and opts["tooltip"].strip(), f"{node_id}.{name} has no tooltip"
        if isinstance(kind, list):
            assert all(isinstance(v, str) for v in kind)
            assert kind or name == "embeds_file", f"{node_id}.{name}: empty choice list"
            if "default" in opts:
                assert opts["default"] in kind
        elif kind in ("INT", "FLOAT"):
            assert opts["min"] <= opts["default"] <= opts["max"], f"{node_id}.{name} default out of range"
            number = int if kind == "INT" else (int, float)
            assert all(isinstance(opts[k], number) for k in ("min", "max", "default", "step"))
        elif kind == "BOOLEAN":
            assert isinstance(opts["default"], bool)
        elif kind == "STRING":
            assert isinstance(opts["default"], str)
        else:
            assert kind in OUR_TYPES | HOST_TYPES, f"{node_id}.{name}: unexpected socket type {kind}"


def test_values_the_issue_fixes(pack):
    apply = pack.NODE_CLASS_MAPPINGS["PuLIDSDXLApply"].INPUT_TYPES()["required"]
    assert apply["weight"][1].items() >= {"default": 0.8, "min": -1.0, "max": 5.0}.items()
    assert apply["method"][0] == ["fidelity", "style", "neutral"] and apply["method"][1]["default"] == "fidelity"
    assert apply["start_at"][1]["default"] == 0.0 and apply["end_at"][1]["default"] == 1.0
    adv = pack.NODE_CLASS_MAPPINGS["PuLIDSDXLApplyAdvanced"].INPUT_TYPES()["required"]
    assert (adv["num_zero"][1]["min"], adv["num_zero"][1]["max"]) == (0, 80)
    assert adv["ortho"][0] == ["off", "v1", "v2"]
    enc = pack.NODE_CLASS_MAPPINGS["PuLIDSDXLEncodeFace"].INPUT_TYPES()["required"]
    assert enc["multi_image"][0] == ["auto", "concat", "mean", "stack"]
    assert (enc["noise"][1]["min"], enc["noise"][1]["max"], enc["noise"][1]["default"]) == (0.0, 1.0, 0.0)
    assert enc["skip_faceless"][1]["default"] is False
    assert enc["face"][0] == list(sys.modules[PACK + ".pulid.detector"].FACE_CHOICES)
    loader = pack.NODE_CLASS_MAPPINGS["PuLIDSDXLFaceEncoderLoader"].INPUT_TYPES()["required"]
    assert loader["provider"][0] == ["auto", "CPU", "CUDA", "ROCM", "CoreML", "DirectML"]
    assert loader["insightface_model"][1]["default"] == "antelopev2"
    regions = sys.modules[PACK + ".pulid.regions"]
    assert regions.REGION_CHOICES == list(sys.modules[PACK + ".pulid.detector"].FACE_CHOICES) + ["all"]
    mask = pack.NODE_CLASS_MAPPINGS["PuLIDSDXLFaceMask"].INPUT_TYPES()["required"]
    crop = pack.NODE_CLASS_MAPPINGS["PuLIDSDXLCropFace"].INPUT_TYPES()["required"]
    assert mask["face"][0] == crop["face"][0] == regions.REGION_CHOICES
    assert {k: mask[k][1]["default"] for k in ("face", "grow", "shape", "feather")} == {
        "face": "all", "grow": 1.3, "shape": "ellipse", "feather": 16}
    assert {k: crop[k][1]["default"] for k in ("face", "context", "working_size", "grow", "shape", "feather",
                                                "skip_faceless")} == {
        "face": "largest", "context": 2.0, "working_size": 1024, "grow": 1.3, "shape": "ellipse", "feather": 24,
        "skip_faceless": False}
    assert (crop["working_size"][1]["min"], crop["working_size"][1]["step"]) == (256, 8)
    assert mask["shape"][0] == crop["shape"][0] == ["ellipse", "box"]
    best = pack.NODE_CLASS_MAPPINGS["PuLIDSDXLBestByLikeness"].INPUT_TYPES()["required"]
    similarity = pack.NODE_CLASS_MAPPINGS["PuLIDSDXLFaceSimilarity"].INPUT_TYPES()["required"]
    assert best["face"] == similarity["face"]
    assert (best["k"][1]["default"], best["k"][1]["min"]) == (1, 1)


def test_encode_does_not_take_apply_settings(pack):
    """Weight, method, window and mask must not be Encode inputs, or changing them re-encodes the face."""
    enc = pack.NODE_CLASS_MAPPINGS["PuLIDSDXLEncodeFace"].INPUT_TYPES()["required"]
    assert not {"weight", "method", "start_at", "end_at", "attn_mask", "num_zero", "ortho"} & set(enc)



def _model(config_name, **unet):
    config = type(config_name, (), {"unet_config": unet})()
    return type("ModelPatcher", (), {"model": type("Base", (), {"model_config": config})()})()


@pytest.mark.parametrize("name,unet,ok", [
    ("SDXL", {"context_dim": 2048, "model_channels": 320, "adm_in_channels": 2816}, True),
    ("Segmind_Vega", {"context_dim": 2048, "model_channels": 320}, True),
    ("SD15", {"context_dim": 768, "model_channels": 320}, False),
    ("SD20", {"context_dim": 1024, "model_channels": 320}, False),
    ("SDXLRefiner", {"context_dim": 1280, "model_channels": 384}, False),
    ("Flux", {"depth": 19}, False)])
def test_only_sdxl_architecture_is_patched(pack, name, unet, ok):
    patch = pack.nodes.patch
    if ok:
        patch.check_sdxl(_model(name, **unet))
        return
    with pytest.raises(sys.modules[PACK + ".pulid.errors"].PulidError, match=name) as caught:
        patch.check_sdxl(_model(name, **unet))
    assert f"context_dim={unet.get('context_dim')}" in str(caught.value)


def test_distilled_sdxl_is_patched_with_a_warning(pack, caplog):
    vega = {"context_dim": 2048, "model_channels": 320, "transformer_depth": [0, 0, 1, 1, 2, 2]}
    with caplog.at_level("WARNING"):
        pack.nodes.patch.check_sdxl(_model("Segmind_Vega", **vega))
    assert "Segmind_Vega" in caplog.text and "[0, 0, 1, 1, 2, 2]" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        pack.nodes.patch.check_sdxl(_model("SDXL", context_dim=2048, model_channels=320,
                                           transformer_depth=[0, 0, 2, 2, 10, 10]))
    assert caplog.text == ""


def test_empty_embeds_folder_leads_to_an_actionable_error(pack, monkeypatch, tmp_path):
    folders = pack.nodes.folders
    try:  # with a host in this process, its embeddings folder becomes an empty one: nothing saved yet
        import folder_paths
    except ImportError:
        folder_paths = None
    if folder_paths is not None:
        monkeypatch.setitem(folder_paths.folder_names_and_paths, folders.EMBEDS_FOLDER,
                            ([str(tmp_path)], {folders.EMBEDS_EXTENSION}))
        # The host caches folder listings and re-checks each cached folder's mtime later: a listing of
        # tmp_path must not outlive this test (tmp_path goes, and the next listing would fail on it).
        monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    assert folders.embeds_files() == [folders.NO_EMBEDS]
    with pytest.raises(sys.modules[PACK + ".pulid.errors"].ModelFileError, match=r"Save PuLID Embeddings \(SDXL\)"):
        folders.embeds_path(folders.NO_EMBEDS)


def test_readme_lists_every_node_and_workflow(pack):
    """The README's node reference names each node with its help page, and its workflow table each shipped
    workflow: a node or workflow added without its line fails here."""
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    reference = readme.split("## Node reference", 1)[1].split("\n## ", 1)[0]
    for node_id, name in pack.NODE_DISPLAY_NAME_MAPPINGS.items():
        assert f"[{name}](web/docs/{node_id}.md) (`{node_id}`)" in reference, f"{node_id} missing from the node reference"
    table = readme.split("## Example workflows", 1)[1].split("\n## ", 1)[0]
    for workflow in sorted((root / "workflows").glob("*.json")):
        assert f"**{workflow.stem}**" in table, f"{workflow.name} missing from the README's workflow table"
