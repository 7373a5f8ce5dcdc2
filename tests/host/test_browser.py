"""The shared workflows in the real ComfyUI frontend: they load clean, convert to their API copy, validate.

Runs against the ComfyUI checkout in COMFYUI_PATH with the frontend package that checkout pins (or the
version in PULID_FRONTEND, installed over the pin), in Debian's headless Chromium driven by Playwright.
Skipped when any of the three is missing. On frontends that offer Nodes 2.0 (DOM nodes instead of canvas
drawing) the workflows and the help page are checked a second time with it on; on older ones those tests
are not collected, so a host run never counts them as skipped.

Two control cases built only from ComfyUI core nodes prove the harness itself before it judges
our files: a plain text-to-image graph must pass every check, and a graph with an unknown node
type and a prompt naming a missing model must be caught.
"""
import copy
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from PIL import Image

from testkit import browser_harness as bh
from testkit import cubiq_workflows
from testkit.faces import compose_faces
from workflow_files.migrate import migrate

COMFYUI_PATH = os.environ.get("COMFYUI_PATH")
# The server needs ComfyUI's requirements; by default they are in the interpreter running pytest.
COMFYUI_PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)
WORKFLOWS = bh.find_workflows(bh.REPO / "workflows") if (bh.REPO / "workflows").is_dir() else []
# The stand-ins: every id the other PuLID packs register (ours must load beside them), the IP-Adapter-like
# node the migrated cubiq workflows contain, and the small text encoders of the rig's checkpoint (app runs).
TEST_NODES = [bh.REPO / "tests" / "host" / "custom_nodes" / name
              for name in ("pulid_test_clashing_pack", "pulid_test_attn2_protocol", "pulid_test_small_text_encoders")]
APP_PICTURE = (256, 320, [(160, 128, 80)])
"""The face-fix app's picture.png: one drawn face the rig's detector finds (height, width, faces as compose_faces
takes them)."""
MIGRATED_UI = migrate(cubiq_workflows.ui()).workflow
MIGRATED_API = migrate(cubiq_workflows.api()).workflow


def _why_skip():
    if not COMFYUI_PATH:
        return "COMFYUI_PATH is not set (point it at a ComfyUI checkout to run the browser test)"
    if not (Path(COMFYUI_PATH) / "main.py").is_file():
        return f"COMFYUI_PATH={COMFYUI_PATH} holds no main.py"
    if not os.access(bh.CHROMIUM, os.X_OK):
        return f"{bh.CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing (pip install playwright; no browser download needed)"
    return None


pytestmark = [pytest.mark.host, pytest.mark.skipif(_why_skip() is not None, reason=_why_skip() or "")]
FRONTEND = bh.frontend_wanted(COMFYUI_PATH) if COMFYUI_PATH and (Path(COMFYUI_PATH) / "requirements.txt").is_file() \
    else ""
NODES2 = bool(FRONTEND) and bh.version_tuple(FRONTEND) >= bh.NODES2_SINCE
NODES2_KEEPS_LAYOUT = bool(FRONTEND) and bh.version_tuple(FRONTEND) >= bh.NODES2_KEEPS_LAYOUT


# ---------------------------------------------------------------- the core-node control graph


def _ui_graph(nodes, links):
    """A UI-format workflow from (id, type, widgets_values, [input (name, type)], [output (name, type)])."""
    out_nodes = []
    for i, (nid, ntype, widgets, inputs, outputs) in enumerate(nodes):
        ins = [{"name": n, "type": t, "link": next((l[0] for l in links if l[3] == nid and l[4] == s), None)}
               for s, (n, t) in enumerate(inputs)]
        outs = [{"name": n, "type": t, "slot_index": s,
                 "links": [l[0] for l in links if l[1] == nid and l[2] == s]}
                for s, (n, t) in enumerate(outputs)]
        out_nodes.append({"id": nid, "type": ntype, "pos": [40 + 330 * (i % 4), 60 + 300 * (i // 4)],
                          "size": [300, 160], "flags": {}, "order": i, "mode": 0, "inputs": ins,
                          "outputs": outs, "properties": {}, "widgets_values": widgets})
    return {"last_node_id": max(n[0] for n in nodes), "last_link_id": max(l[0] for l in links),
            "nodes": out_nodes, "links": links, "groups": [], "config": {}, "extra": {}, "version": 0.4}


CKPT = "control_sdxl.safetensors"
CONTROL_UI = _ui_graph(
    [
        (1, "CheckpointLoaderSimple", [CKPT], [], [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")]),
        (2, "CLIPTextEncode", ["a lighthouse at dusk"], [("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")]),
        (3, "CLIPTextEncode", ["blurry"], [("clip", "CLIP")], [("CONDITIONING", "CONDITIONING")]),
        (4, "EmptyLatentImage", [1024, 1024, 1], [], [("LATENT", "LATENT")]),
        (5, "KSampler", [42, "fixed", 20, 7.0, "euler", "normal", 1.0],
         [("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
          ("latent_image", "LATENT")], [("LATENT", "LATENT")]),
        (6, "VAEDecode", [], [("samples", "LATENT"), ("vae", "VAE")], [("IMAGE", "IMAGE")]),
        (7, "SaveImage", ["control"], [("images", "IMAGE")], []),
    ],
    [[1, 1, 0, 5, 0, "MODEL"], [2, 1, 1, 2, 0, "CLIP"], [3, 1, 1, 3, 0, "CLIP"],
     [4, 2, 0, 5, 1, "CONDITIONING"], [5, 3, 0, 5, 2, "CONDITIONING"], [6, 4, 0, 5, 3, "LATENT"],
     [7, 5, 0, 6, 0, "LATENT"], [8, 1, 2, 6, 1, "VAE"], [9, 6, 0, 7, 0, "IMAGE"]],
)
# Written by hand from the graph above: what the server must receive.
CONTROL_API = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CKPT}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk", "clip": ["1", 1]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["1", 1]}},
    "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 1024, "height": 1024, "batch_size": 1}},
    "5": {"class_type": "KSampler", "inputs": {
        "seed": 42, "steps": 20, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0,
        "model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0]}},
    "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
    "7": {"class_type": "SaveImage", "inputs": {"filename_prefix": "control", "images": ["6", 0]}},
}


# ---------------------------------------------------------------- fixtures


def _install_rig(server, comfy):
    """The host rig's small real models (tests/host/conftest.py) and face photos, and a picture with a drawn face,
    so that an app run renders; the other names the workflows use get placeholders after this."""
    for path in comfy.models.rglob("*"):
        if path.is_file():
            target = server.models / path.relative_to(comfy.models)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(path.resolve())
    for name in ("face.png", "face2.png"):
        shutil.copy(Path(comfy.folder_paths.get_input_directory()) / name, server.input / name)
    height, width, faces = APP_PICTURE
    Image.fromarray(compose_faces(height, width, faces)[0]).save(server.input / "picture.png")


@pytest.fixture(scope="module")
def host(tmp_path_factory, host_report, comfy):
    """Server + browser for the whole module; both are stopped however the tests end."""
    cache = bh.REPO / "tests" / "_generated"
    packages = bh.host_packages_dir(COMFYUI_PATH, cache, python=COMFYUI_PYTHON)
    work = tmp_path_factory.mktemp("comfy_browser")
    with bh.ComfyServer(COMFYUI_PATH, work, packages_dir=packages, python=COMFYUI_PYTHON,
                        extra_custom_nodes=TEST_NODES) as server:
        _install_rig(server, comfy)
        mapping = server.folder_of_combos()
        prompts = [CONTROL_API, MIGRATED_API] + [w.api for w in WORKFLOWS if w.api]
        server.add_placeholders(prompts, mapping,
                                extra_models=[e for w in WORKFLOWS for e in bh.model_entries(w.ui)])
        info = server.get("/object_info", timeout=120)
        with bh.Frontend(server.url) as ui:
            host_report["frontend"] = ui.version  # the host report names the frontend that really ran
            yield {"server": server, "ui": ui, "info": info, "shots": work / "screenshots"}


def _assert_loads_clean(report, label):
    unknown = [f"#{n['id']} {n['type']}" for n in report.nodes if not n["known"]]  # ids as strings: see harness
    assert not unknown, f"{label}: node types the frontend does not know: {unknown}"
    assert not report.dialogs, f"{label}: a dialog opened on load: {report.dialogs}"
    assert not report.console_errors, f"{label}: console errors on load: {report.console_errors}"


def _assert_validates(server, prompt, label):
    status, resp = server.queue_and_cancel(prompt)
    assert status == 200 and not resp.get("node_errors"), \
        f"{label}: /prompt rejected it (HTTP {status}): {json.dumps(resp, indent=1)[:3000]}"


# ---------------------------------------------------------------- harness checks


def test_frontend_is_the_one_asked_for(host):
    """The host's pin, or PULID_FRONTEND: a run on another frontend than it claims would prove nothing."""
    # 0.3.x logs "ComfyUI frontend version: X", later hosts "comfyui-frontend-package version: X" in colour.
    log = re.sub(r"\x1b\[[0-9;]*m", "", host["server"].log_text())
    assert re.search(rf"(ComfyUI frontend|comfyui-frontend-package) version: {re.escape(FRONTEND)}\b", log), \
        log[-3000:]
    assert host["ui"].version == FRONTEND


def test_core_graph_passes_every_check(host):
    report = host["ui"].load(copy.deepcopy(CONTROL_UI))
    _assert_loads_clean(report, "control graph")
    shown = {n["id"]: [w["value"] for w in n["widgets"]] for n in report.nodes}
    assert shown["5"] == [42, "fixed", 20, 7.0, "euler", "normal", 1.0]
    assert bh.prompt_core(host["ui"].to_prompt()) == CONTROL_API
    _assert_validates(host["server"], CONTROL_API, "control graph")


def test_unknown_node_is_caught(host):
    broken = copy.deepcopy(CONTROL_UI)
    broken["nodes"][3]["type"] = "NoSuchNodeForPulidBrowserTest"
    report = host["ui"].load(broken)
    host["ui"].close_dialogs()
    assert any(not n["known"] for n in report.nodes)
    assert report.dialogs, "the missing-node warning did not show: the dialog check would pass anything"


def test_declared_missing_model_is_caught(host):
    """A workflow's `models` list (name, url, folder) makes the frontend offer the download.

    Newer frontends warn only about a declared model that a node's widget names, as ours all do."""
    broken = copy.deepcopy(CONTROL_UI)
    broken["models"] = [{"name": "not_downloaded.safetensors", "directory": "checkpoints",
                         "url": "https://huggingface.co/pulid-sdxl/none/resolve/main/not_downloaded.safetensors"}]
    broken["nodes"][0]["widgets_values"] = ["not_downloaded.safetensors"]
    broken["nodes"][0]["properties"] = {"models": broken["models"]}
    report = host["ui"].load(broken)
    host["ui"].close_dialogs()
    assert any("not_downloaded.safetensors" in d for d in report.dialogs), report.dialogs


def test_missing_model_is_rejected(host):
    broken = copy.deepcopy(CONTROL_API)
    broken["1"]["inputs"]["ckpt_name"] = "not_downloaded.safetensors"
    status, resp = host["server"].queue_and_cancel(broken)
    assert status == 400 and "1" in resp["node_errors"]


# ---------------------------------------------------------------- our workflows


def test_every_workflow_has_an_api_copy():
    assert WORKFLOWS, "no UI-format workflow found in workflows/"
    orphans = [w.ui_path.name for w in WORKFLOWS if w.api is None]
    assert not orphans, f"UI workflows without an API-format copy (workflows/api/<name>.json): {orphans}"


def _is_ours(info, node_type):
    return bh.PACK_NAME in str(info.get(node_type, {}).get("python_module", ""))


@pytest.mark.parametrize("wf", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
def test_workflow_in_frontend(host, wf):
    report = host["ui"].load(copy.deepcopy(wf.ui))
    _assert_loads_clean(report, wf.ui_path.name)

    shown = {n["id"]: n for n in report.nodes}
    ours = [n for n in bh.ui_nodes(wf.ui) if _is_ours(host["info"], n["type"])]
    assert ours, f"{wf.ui_path.name} holds no PuLID node"
    for node in ours:
        values = node.get("widgets_values", [])
        widgets = shown[str(node["id"])]["widgets"]
        got = ({w["name"]: w["value"] for w in widgets if w["name"] in values} if isinstance(values, dict)
               else [w["value"] for w in widgets])
        assert got == values, f"{wf.ui_path.name} node #{node['id']} {node['type']}: shows {got}, file holds {values}"

    # The layout test (tests/test_workflow_layout.py) computes from the saved boxes and reroutes: the frontend
    # must draw those, not sizes of its own.
    for node in bh.ui_nodes(wf.ui):
        drawn = shown[str(node["id"])]
        assert [round(v) for v in drawn["pos"] + drawn["size"]] == [round(v) for v in node["pos"] + node["size"]], \
            f"{wf.ui_path.name} node #{node['id']} {node['type']} is drawn at {drawn['pos']} {drawn['size']}"
    assert report.reroutes == len(wf.ui["extra"].get("reroutes") or []), f"{wf.ui_path.name}: reroutes lost"

    prompt = host["ui"].to_prompt()
    assert wf.api is not None, f"{wf.ui_path.name} has no API-format copy"
    assert bh.prompt_core(prompt, host["info"]) == bh.prompt_core(wf.api), \
        f"{wf.ui_path.name} converts to a prompt that differs from {wf.api_path.name}"
    # Titles too: a user exporting (API) from the frontend gets the committed file, display-only widgets aside.
    # A node without a title of its own exports its display name, which newer hosts gave some core nodes
    # ("SolidMask" became "Create Solid Mask"): only the titles the workflow sets are compared.
    titled = {str(n["id"]) for n in bh.ui_nodes(wf.ui) if n.get("title")}
    titles = {k: v.get("_meta") for k, v in prompt.items() if k in titled}
    assert titles == {k: v.get("_meta") for k, v in wf.api.items() if k in titled}, \
        f"{wf.ui_path.name}: node titles differ from {wf.api_path.name}"
    _assert_validates(host["server"], prompt, wf.ui_path.name)
    shot = host["ui"].screenshot(host["shots"] / f"{wf.name}.png")
    assert shot.stat().st_size > 1000


APP_MODE = bool(FRONTEND) and bh.version_tuple(FRONTEND) >= bh.APP_MODE_SINCE
APP_READY = [w for w in WORKFLOWS if (w.ui.get("extra") or {}).get("linearData")]


def test_app_ready_workflows_are_found():
    assert sorted(w.name for w in APP_READY) == ["pulid_basic", "pulid_face_fix"]


APP_RUN_CUTS = {"EmptyLatentImage": {"width": 64, "height": 64}, "KSampler": {"steps": 2},
                "PuLIDSDXLCropFace": {"working_size": 256}}
"""What an app run changes in the graph before it runs, so the rig renders on a CPU in seconds (inputs the app
does not show; the API copy gets the same changes for the comparison)."""


def _cut_for_the_rig(api):
    """{node id: {widget: value}}: APP_RUN_CUTS for the nodes of `api` they apply to."""
    return {key: APP_RUN_CUTS[node["class_type"]] for key, node in api.items() if node["class_type"] in APP_RUN_CUTS}


@pytest.mark.parametrize("wf", APP_READY, ids=[w.name for w in APP_READY])
def test_app_ready_workflow_opens_as_graph_and_switches_to_its_app(host, wf):
    """The template opens as its graph (docs/app-mode.md); on a frontend with app mode the switch shows the
    inputs extra.linearData lists, in its order, and the app's Run button sends the API copy's prompt, which runs
    on the rig's models and shows its saved image among the app's outputs. Older frontends keep the graph."""
    ui = host["ui"]
    report = ui.load(copy.deepcopy(wf.ui))
    _assert_loads_clean(report, wf.ui_path.name)
    assert not ui.in_app_mode(), f"{wf.ui_path.name} opened as an app"
    if not APP_MODE:
        return
    cuts = _cut_for_the_rig(wf.api)
    expected = copy.deepcopy(wf.api)
    for key, values in cuts.items():
        expected[key]["inputs"].update(values)
    ui.set_widgets(cuts)
    try:
        shown = ui.app_mode(True)
        want = [name for _, name, *_ in wf.ui["extra"]["linearData"]["inputs"]]
        assert [item["label"] for item in shown] == want, f"{wf.ui_path.name}: the app shows {shown}"
        prompt, prompt_id, outputs, images = ui.run_app(host["server"])
        assert bh.prompt_core(prompt, host["info"]) == bh.prompt_core(expected), \
            f"{wf.ui_path.name}: the app queued a prompt that differs from {wf.api_path.name}"
        (output,) = [str(node) for node in wf.ui["extra"]["linearData"]["outputs"]]
        (saved,) = outputs[output]["images"]
        assert (host["server"].output / saved["subfolder"] / saved["filename"]).is_file()
        assert any(f"filename={saved['filename']}" in (src or "") for src in images), \
            f"{wf.ui_path.name}: the app's outputs show {images}, not {saved['filename']} (prompt {prompt_id})"
    finally:
        ui.app_mode(False)


def test_migrated_cubiq_workflow_in_frontend(host):
    """`pulid migrate` output: loads clean, the frontend makes the same prompt as the migrated API copy, and
    the server accepts it."""
    report = host["ui"].load(copy.deepcopy(MIGRATED_UI))
    _assert_loads_clean(report, "migrated cubiq workflow")
    prompt = host["ui"].to_prompt()
    assert bh.prompt_core(prompt, host["info"]) == bh.prompt_core(MIGRATED_API, host["info"])
    _assert_validates(host["server"], prompt, "migrated cubiq workflow")


# ---------------------------------------------------------------- help pages and translations


def _assert_help_is_our_page(text):
    """The Info panel shows web/docs/PuLIDSDXLApply.md, not the frontend's fallback built from the node's
    description and input tooltips (which also name the inputs and `fidelity`): the page's own headings and
    recipe line are only in the page."""
    lines = (bh.REPO / "web" / "docs" / "PuLIDSDXLApply.md").read_text(encoding="utf-8").splitlines()
    title = lines[0].lstrip("# ").strip()
    recipe = lines[lines.index("## Recipe") + 1].split(".")[0]  # the recipe's first sentence, as rendered
    for own in (title, "Recipe", "Errors and their fix", recipe):
        assert own in text, f"the help panel shows {text[:300]!r}, not web/docs/PuLIDSDXLApply.md ({own!r} missing)"
    assert "attn_mask" in text


def test_help_panel_shows_our_page(host):
    """web/docs/<NodeId>.md is what the frontend's node help shows (not its fallback from the description)."""
    _assert_help_is_our_page(host["ui"].help_page("PuLIDSDXLApply"))
    host["ui"].close_dialogs()


def test_zh_locale_shows_translated_names(host):
    zh = json.loads((bh.REPO / "locales" / "zh" / "nodeDefs.json").read_text(encoding="utf-8"))
    en = json.loads((bh.REPO / "locales" / "en" / "nodeDefs.json").read_text(encoding="utf-8"))
    node_types = ("PuLIDSDXLApply", "PuLIDSDXLEncodeFace")
    assert host["ui"].display_names(node_types, "zh") == [zh[t]["display_name"] for t in node_types]
    assert host["ui"].titles(node_types) == [en[t]["display_name"] for t in node_types]  # English again after


# ---------------------------------------------------------------- Nodes 2.0
# Defined only for frontends that offer it: an empty parametrization or a skip would fail a host run.

# Not a field of its own in Nodes 2.0: drawn as an icon button inside the seed's number field.
NODES2_NOT_FIELDS = {"control_after_generate", "control_before_generate"}


def _shows(value, shown):
    """Whether a widget showing the strings `shown` shows `value`; a number at the precision it is shown with
    (weight 0.8 as "0.80"), a switch as its aria-checked state."""
    if isinstance(value, bool):
        return str(value).lower() in shown
    if isinstance(value, (int, float)):
        for text in shown:
            try:
                number = float(text.replace(",", ""))
            except ValueError:
                continue
            decimals = len(text.split(".", 1)[1]) if "." in text else 0
            if abs(number - value) <= 0.5 * 10 ** -decimals + 1e-9:
                return True
        return False
    return str(value) in shown


def _nodes2_problems(ui_graph, report, dom, keeps_layout=True):
    """What a user would miss on screen: a node of `ui_graph` not drawn or off screen, a wrong title, a widget
    or value not shown. The values come from the graph (equal to the file: test_workflow_in_frontend).
    Without `keeps_layout` (frontends that rescale the saved layout) a node only has to be drawn somewhere."""
    problems = []
    graph = {n["id"]: n for n in report.nodes}
    shown = {n["id"]: n for n in dom}
    width, height = bh.VIEWPORT["width"], bh.VIEWPORT["height"]
    for node in bh.ui_nodes(ui_graph):
        nid, label = str(node["id"]), f"#{node['id']} {node['type']}"
        el = shown.get(nid)
        if el is None:
            problems.append(f"{label}: no DOM node")
            continue
        # Its title bar where the saved layout puts it, inside the window; how tall the node grows below it is
        # the frontend's styling (1.42 draws widget rows taller than 1.58 does).
        x, y, w, h = el["box"]
        if not (w > 0 and h > 0):
            problems.append(f"{label}: drawn with no size ({el['box']})")
        elif keeps_layout and not (0 <= x < width and 0 <= y < height):
            problems.append(f"{label}: not on screen when the workflow opens ({el['box']})")
        title = node.get("title") or graph[nid]["title"]
        if el["title"] != title:
            problems.append(f"{label}: title {el['title']!r}, expected {title!r}")
        for widget in graph[nid]["widgets"]:
            if widget["type"] == "button" or widget["name"] in NODES2_NOT_FIELDS:
                continue
            names = {widget["name"], widget["label"]}
            fields = [f for f in el["widgets"] if f["label"] in names]
            if not fields and isinstance(widget["value"], str):  # multi-line text has no label of its own
                fields = [f for f in el["widgets"] if f["label"] is None and widget["value"] in f["shown"]]
            if not fields:
                problems.append(f"{label}: widget {widget['name']} not shown")
            elif not any(_shows(widget["value"], f["shown"]) for f in fields):
                problems.append(f"{label}: widget {widget['name']} shows {fields[0]['shown']}, "
                                f"holds {widget['value']!r}")
    return problems


if NODES2:
    @pytest.fixture
    def nodes2(host):
        """Nodes 2.0 on for one test, as its settings toggle does; off again after, whatever happens."""
        host["ui"].set_nodes2(True)
        try:
            yield host
        finally:
            host["ui"].close_dialogs()
            host["ui"].set_nodes2(False)

    def test_nodes2_check_sees_what_is_wrong(nodes2):
        """The control graph passes the Nodes 2.0 check, and the check catches a value the page does not show
        and a node it does not draw: it cannot pass a graph just because it read nothing."""
        graph = copy.deepcopy(CONTROL_UI)
        graph["extra"]["ds"] = {"scale": 1, "offset": [0, 0]}
        report = nodes2["ui"].load(graph)
        _assert_loads_clean(report, "control graph")
        dom = nodes2["ui"].nodes2_shown(len(report.nodes))
        assert not _nodes2_problems(graph, report, dom, NODES2_KEEPS_LAYOUT)
        wrong = copy.deepcopy(report)
        steps = next(w for n in wrong.nodes if n["id"] == "5" for w in n["widgets"] if w["name"] == "steps")
        steps["value"] = 21  # the page shows 20
        problems = _nodes2_problems(graph, wrong, dom, NODES2_KEEPS_LAYOUT)
        assert len(problems) == 1 and problems[0].startswith("#5 KSampler: widget steps shows "), problems
        missing = [n for n in dom if n["id"] != "6"]
        assert _nodes2_problems(graph, report, missing, NODES2_KEEPS_LAYOUT) == ["#6 VAEDecode: no DOM node"]

    @pytest.mark.parametrize("wf", WORKFLOWS, ids=[w.name for w in WORKFLOWS])
    def test_workflow_in_nodes2(nodes2, wf):
        """With Nodes 2.0 each node is a DOM element: every node of the workflow is drawn on screen with its
        title and every widget showing the file's value, and the Run button queues the API copy's prompt."""
        ui = nodes2["ui"]
        report = ui.load(copy.deepcopy(wf.ui))
        _assert_loads_clean(report, wf.ui_path.name)
        dom = ui.nodes2_shown(len(report.nodes))
        problems = _nodes2_problems(wf.ui, report, dom, NODES2_KEEPS_LAYOUT)
        assert not problems, f"{wf.ui_path.name} with Nodes 2.0:\n" + "\n".join(problems)

        prompt, status, resp = ui.queue_from_run_button(nodes2["server"])
        assert status == 200 and not resp.get("node_errors"), \
            f"{wf.ui_path.name}: Run was rejected (HTTP {status}): {json.dumps(resp, indent=1)[:3000]}"
        assert bh.prompt_core(prompt, nodes2["info"]) == bh.prompt_core(wf.api), \
            f"{wf.ui_path.name}: Run with Nodes 2.0 queues a prompt that differs from {wf.api_path.name}"
        assert not ui.errors, f"{wf.ui_path.name}: console errors with Nodes 2.0: {ui.errors}"

    def test_help_panel_in_nodes2(nodes2):
        """The same help page, with the node selected by a click on its DOM title bar."""
        _assert_help_is_our_page(nodes2["ui"].help_page("PuLIDSDXLApply"))
