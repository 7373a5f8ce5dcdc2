"""The shipped workflows load in ComfyUI: node types exist, widget values fit their inputs, links are
consistent, and each API copy (workflows/api/) is exactly what the UI graph queues.

Core node inputs are listed below from ComfyUI's nodes.py / comfy_extras (v0.3.x-v0.8): the UI
stores widget values by position, so their order matters. Our nodes are read from INPUT_TYPES.
"""
import glob
import json
import os

import pytest

from testkit.pack import import_pack

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))
FILE = "FILE"  # a combo listing files: any non-empty string is structurally fine
SAMPLERS = ["euler", "euler_ancestral", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_sde", "ddim"]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "beta"]
CONTROL = ["fixed", "increment", "decrement", "randomize"]
ANY = "*"  # a socket that accepts every type

# type -> (socket inputs [(name, type)], widgets [(name, kind, lo, hi)], outputs [type]); kind: INT, FLOAT,
# STRING, FILE or a list of choices; widgets named in UI_ONLY are in widgets_values but not in the prompt.
CORE = {
    "CheckpointLoaderSimple": ([], [("ckpt_name", FILE)], ["MODEL", "CLIP", "VAE"]),
    "CLIPTextEncode": ([("clip", "CLIP")], [("text", "STRING")], ["CONDITIONING"]),
    "EmptyLatentImage": ([], [("width", "INT", 16, 16384), ("height", "INT", 16, 16384),
                              ("batch_size", "INT", 1, 4096)], ["LATENT"]),
    "KSampler": ([("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                  ("latent_image", "LATENT")],
                 [("seed", "INT", 0, 2 ** 64 - 1), ("control_after_generate", CONTROL), ("steps", "INT", 1, 10000),
                  ("cfg", "FLOAT", 0.0, 100.0), ("sampler_name", SAMPLERS), ("scheduler", SCHEDULERS),
                  ("denoise", "FLOAT", 0.0, 1.0)], ["LATENT"]),
    "VAEDecode": ([("samples", "LATENT"), ("vae", "VAE")], [], ["IMAGE"]),
    "VAEEncode": ([("pixels", "IMAGE"), ("vae", "VAE")], [], ["LATENT"]),
    "SetLatentNoiseMask": ([("samples", "LATENT"), ("mask", "MASK")], [], ["LATENT"]),
    "InpaintModelConditioning": ([("positive", "CONDITIONING"), ("negative", "CONDITIONING"), ("vae", "VAE"),
                                  ("pixels", "IMAGE"), ("mask", "MASK")], [("noise_mask", "BOOLEAN")],
                                 ["CONDITIONING", "CONDITIONING", "LATENT"]),
    "SaveImage": ([("images", "IMAGE")], [("filename_prefix", "STRING")], []),
    "PreviewImage": ([("images", "IMAGE")], [], []),
    "LoadImage": ([], [("image", FILE), ("upload", ["image"])], ["IMAGE", "MASK"]),
    "SolidMask": ([], [("value", "FLOAT", 0.0, 1.0), ("width", "INT", 1, 16384), ("height", "INT", 1, 16384)],
                  ["MASK"]),
    "MaskComposite": ([("destination", "MASK"), ("source", "MASK")],
                      [("x", "INT", 0, 16384), ("y", "INT", 0, 16384),
                       ("operation", ["multiply", "add", "subtract", "and", "or", "xor"])], ["MASK"]),
    "InvertMask": ([("mask", "MASK")], [], ["MASK"]),
    "LatentBatch": ([("samples1", "LATENT"), ("samples2", "LATENT")], [], ["LATENT"]),
    "ImageBatch": ([("image1", "IMAGE"), ("image2", "IMAGE")], [], ["IMAGE"]),
    # Its text box ("preview") is display only: not serialised, not in the prompt.
    "PreviewAny": ([("source", ANY)], [], []),
}
UI_ONLY = {"control_after_generate", "upload"}
FILE_WIDGETS = {"pulid_file", "eva_clip_file", "insightface_model", "embeds_file"}
SOCKET_KINDS = {"INT", "FLOAT", "STRING", "BOOLEAN"}


def our_definitions():
    defs = {}
    for node_id, cls in import_pack().NODE_CLASS_MAPPINGS.items():
        spec = cls.INPUT_TYPES()
        sockets, widgets = [], []
        for name, (kind, *rest) in {**spec["required"], **spec.get("optional", {})}.items():
            opts = rest[0] if rest else {}
            if isinstance(kind, list):
                widgets.append((name, FILE if name in FILE_WIDGETS else kind))
            elif kind in SOCKET_KINDS:
                widgets.append((name, kind, opts.get("min"), opts.get("max")))
            else:
                sockets.append((name, kind))
        defs[node_id] = (sockets, widgets, list(cls.RETURN_TYPES))
    return defs


def optional_sockets(node_type):
    """Our nodes' optional inputs (Apply's attn_mask, Crop Face's mask...): an unconnected one is left out of the
    saved node. Core nodes' inputs above are all required."""
    cls = import_pack().NODE_CLASS_MAPPINGS.get(node_type)
    return set(cls.INPUT_TYPES().get("optional", {})) if cls else set()


@pytest.fixture(scope="module")
def definitions():
    return {**CORE, **our_definitions()}


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def api_path(ui_path):
    return os.path.join(os.path.dirname(ui_path), "api", os.path.basename(ui_path))


def test_every_ui_workflow_has_an_api_copy():
    assert len(WORKFLOWS) >= 7
    api = sorted(p for p in glob.glob(os.path.join(ROOT, "workflows", "api", "*.json"))
                 if not p.endswith(".inputs.json"))  # the input maps beside them (tests/test_input_maps.py)
    assert [os.path.basename(p) for p in api] == [os.path.basename(p) for p in WORKFLOWS]


def check_widget(where, value, kind, lo=None, hi=None):
    if kind == FILE:
        assert isinstance(value, str) and value, where
    elif isinstance(kind, list):
        assert value in kind, f"{where}: {value!r} not in {kind}"
    elif kind == "INT":
        assert isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi, where
    elif kind == "FLOAT":
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and lo <= value <= hi, where
    elif kind == "BOOLEAN":
        assert isinstance(value, bool), where
    else:
        assert isinstance(value, str), where


# Nodes of the frontend alone: graphToPrompt leaves them out, the server never sees them.
FRONTEND_ONLY = {"Note", "MarkdownNote"}


def ui_to_api(ui, definitions):
    """What the frontend's graphToPrompt makes of a saved graph (titles left out)."""
    links = {link[0]: link for link in ui["links"]}
    prompt = {}
    for node in ui["nodes"]:
        if node["type"] in FRONTEND_ONLY:
            continue
        sockets, widgets, _ = definitions[node["type"]]
        inputs = {}
        for entry in node["inputs"]:
            if entry.get("link") is not None:
                _, src, slot, *_ = links[entry["link"]]
                inputs[entry["name"]] = [str(src), slot]
        for (name, *_), value in zip(widgets, node["widgets_values"]):
            if name not in UI_ONLY:
                inputs[name] = value
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return prompt


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_ui_workflow(path, definitions):
    ui = load(path)
    assert ui["version"] == 0.4 and isinstance(ui["groups"], list) and isinstance(ui["extra"], dict)
    nodes = {n["id"]: n for n in ui["nodes"]}
    assert len(nodes) == len(ui["nodes"]) and ui["last_node_id"] >= max(nodes)
    links = {link[0]: link for link in ui["links"]}
    assert len(links) == len(ui["links"]) and ui["last_link_id"] >= max(links)
    for node in ui["nodes"]:
        assert {"id", "type", "pos", "size", "inputs", "outputs", "widgets_values", "mode", "order"} <= set(node)
        if node["type"] in FRONTEND_ONLY:
            assert not node["inputs"] and not node["outputs"] and [type(v) for v in node["widgets_values"]] == [str]
            continue
        assert node["type"] in definitions, f"unknown node type {node['type']}"
        sockets, widgets, outputs = definitions[node["type"]]
        where = f"{os.path.basename(path)} node {node['id']} ({node['type']})"
        assert len(node["widgets_values"]) == len(widgets), f"{where}: widget count"
        for (name, kind, *bounds), value in zip(widgets, node["widgets_values"]):
            check_widget(f"{where}.{name}", value, kind, *bounds)
        socket_types = dict(sockets)
        for entry in node["inputs"]:
            assert socket_types[entry["name"]] == entry["type"], where
        connected = {e["name"] for e in node["inputs"] if e.get("link") is not None}
        required = [name for name, _ in sockets if name not in optional_sockets(node["type"])]
        assert set(required) <= connected, f"{where}: unconnected inputs {set(required) - connected}"
        assert [o["type"] for o in node["outputs"]] == outputs, where
    for link_id, src, slot, dst, dst_slot, kind in ui["links"]:
        out = nodes[src]["outputs"][slot]
        assert out["type"] == kind and link_id in out["links"]
        entry = [e for e in nodes[dst]["inputs"] if e.get("link") == link_id]
        assert len(entry) == 1 and entry[0]["type"] in (kind, ANY)
        assert dict(definitions[nodes[dst]["type"]][0])[entry[0]["name"]] in (kind, ANY)
        assert nodes[dst]["inputs"].index(entry[0]) == dst_slot
    for node in ui["nodes"]:
        for out in node["outputs"]:
            assert all(links[i][1] == node["id"] for i in out["links"] or [])


@pytest.mark.parametrize("path", WORKFLOWS, ids=os.path.basename)
def test_api_copy_equals_ui_graph(path, definitions):
    api = load(api_path(path))
    for node in api.values():
        assert set(node) <= {"class_type", "inputs", "_meta"}
    stripped = {k: {"class_type": v["class_type"], "inputs": v["inputs"]} for k, v in api.items()}
    assert stripped == ui_to_api(load(path), definitions)


def test_model_file_names_are_the_real_ones():
    names = set()
    for path in WORKFLOWS:
        for node in load(path)["nodes"]:
            names.update(v for v in node["widgets_values"] if isinstance(v, str))
    assert {"pulid_v1.1.safetensors", "EVA02_CLIP_L_336_psz14_s6B.pt", "sd_xl_base_1.0.safetensors",
            "sdxl_lightning_4step.safetensors", "face.png", "antelopev2"} <= names


def test_similarity_sweep_changes_only_the_weight():
    """Same seed, prompt and latent for every sampler, one weight each, all scored by one Face Similarity."""
    api = load(os.path.join(ROOT, "workflows", "api", "pulid_similarity_sweep.json"))
    samplers = [n for n in api.values() if n["class_type"] == "KSampler"]
    applies = {key: n for key, n in api.items() if n["class_type"] == "PuLIDSDXLApply"}
    assert len(samplers) == len(applies) == 3
    settings = [{k: v for k, v in s["inputs"].items() if k != "model"} for s in samplers]
    assert all(s == settings[0] for s in settings)
    assert sorted(applies[s["inputs"]["model"][0]]["inputs"]["weight"] for s in samplers) == [0.4, 0.8, 1.2]
    (similarity,) = [n for n in api.values() if n["class_type"] == "PuLIDSDXLFaceSimilarity"]
    reference = similarity["inputs"]["reference"]
    assert api[reference[0]]["class_type"] == "LoadImage"
    assert any(n["class_type"] == "PuLIDSDXLEncodeFace" and n["inputs"]["image"] == reference for n in api.values())


def test_tradeoff_evaluates_baseline_fidelity_and_style_in_one_batch():
    """One seed, prompt and latent for every sampler; the baseline samples the plain model; the batch order is the
    labels' order; Evaluate reads the same prompt as the sampler and the baseline's own decode."""
    api = load(os.path.join(ROOT, "workflows", "api", "pulid_tradeoff.json"))
    samplers = {key: n for key, n in api.items() if n["class_type"] == "KSampler"}
    assert len(samplers) == 3
    settings = [{k: v for k, v in s["inputs"].items() if k != "model"} for s in samplers.values()]
    assert all(s == settings[0] for s in settings)

    def source(link):
        return api[link[0]]

    def batch_order(link):
        node = source(link)
        if node["class_type"] == "LatentBatch":
            return batch_order(node["inputs"]["samples1"]) + batch_order(node["inputs"]["samples2"])
        assert node["class_type"] == "KSampler"
        model = source(node["inputs"]["model"])
        if model["class_type"] == "CheckpointLoaderSimple":
            return ["w 0 baseline"]
        assert model["class_type"] == "PuLIDSDXLApply"
        return [f"w {model['inputs']['weight']} {model['inputs']['method']}"]

    (key,) = [k for k, n in api.items() if n["class_type"] == "PuLIDSDXLEvaluate"]
    evaluate = api[key]["inputs"]
    decode = source(evaluate["images"])
    assert decode["class_type"] == "VAEDecode"
    order = batch_order(decode["inputs"]["samples"])
    assert evaluate["labels"].splitlines() == order
    assert order == ["w 0 baseline", "w 0.8 fidelity", "w 0.8 style"]
    baseline = source(evaluate["baseline"])
    assert baseline["class_type"] == "VAEDecode" and batch_order(baseline["inputs"]["samples"]) == ["w 0 baseline"]
    positive = source(next(iter(samplers.values()))["inputs"]["positive"])
    assert evaluate["prompt"] == positive["inputs"]["text"]
    assert source(evaluate["reference"])["class_type"] == "LoadImage"
    saved = {tuple(n["inputs"]["images"]) for n in api.values() if n["class_type"] == "SaveImage"}
    assert saved == {(key, 4), (key, 5)}  # the chart and the annotated batch
