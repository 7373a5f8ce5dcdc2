"""Each API workflow's input map (workflows/api/<name>.inputs.json) names inputs that are there to be set.

A client fills an API workflow by argument name through its map: {"inputs": {argument: {node, class_type,
input}}, "outputs": {name: {node, class_type}}}. Every entry must point at a node of the API copy with that
class_type and at one of its widget values (never a link, which a value would cut), and the UI copy must hold
the same node with that widget, so the map stays true of both files a user may start from. The UI stores
widget values by position: the widget order is tests/test_workflow_files.py's.
"""
import json
from pathlib import Path

import pytest

from pulid_cli.main import build_parser
from tests.test_workflow_files import CORE, our_definitions

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
API = sorted(p for p in (WORKFLOWS / "api").glob("*.json") if not p.name.endswith(".inputs.json"))
MAPS = sorted((WORKFLOWS / "api").glob("*.inputs.json"))
# Options of `generate` that say where and how to run, not what to draw.
RUN_OPTIONS = {"comfyui", "server", "out", "models_dir", "extra_model_paths", "workflow", "cpu"}


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _map_path(api_path):
    return api_path.with_name(api_path.stem + ".inputs.json")


@pytest.fixture(scope="module")
def widgets():
    """node type -> its widget names in the UI's order."""
    return {kind: [name for name, *_ in spec[1]] for kind, spec in {**CORE, **our_definitions()}.items()}


def map_problems(inputs_map, api, ui, widgets):
    """What in `inputs_map` does not hold in the API workflow `api` and the UI workflow `ui`."""
    if set(inputs_map) != {"inputs", "outputs"} or not inputs_map["outputs"]:
        return [f"keys {sorted(inputs_map)}: want inputs and outputs (at least one)"]
    ui_nodes = {str(node["id"]): node for node in ui["nodes"]}
    problems = []
    for section, keys in (("inputs", {"node", "class_type", "input"}), ("outputs", {"node", "class_type"})):
        for name, entry in inputs_map[section].items():
            where = f"{section[:-1]} {name!r}"
            if set(entry) != keys:
                problems.append(f"{where}: keys {sorted(entry)}, want {sorted(keys)}")
                continue
            node_id, kind = entry["node"], entry["class_type"]
            missing = [f"{where}: the {copy} copy has no {kind} node {node_id}"
                       for copy, found in (("API", api.get(node_id, {}).get("class_type")),
                                           ("UI", ui_nodes.get(node_id, {}).get("type"))) if found != kind]
            problems += missing
            if section == "inputs" and not missing:
                problems += _input_problems(where, api[node_id], ui_nodes[node_id], entry["input"], widgets)
    return problems


def _input_problems(where, api_node, ui_node, name, widgets):
    """Whether input `name` is a widget value in both copies of one node, the same in both."""
    kind, value = ui_node["type"], api_node["inputs"].get(name)
    if value is None or isinstance(value, list):
        return [f"{where}: {kind} {ui_node['id']}'s {name!r} in the API copy is "
                f"{'a link' if isinstance(value, list) else 'missing'}, not a value"]
    names, values = widgets.get(kind, []), ui_node["widgets_values"]
    if name not in names or names.index(name) >= len(values):
        return [f"{where}: {kind} {ui_node['id']} in the UI copy has no widget {name!r}"]
    if values[names.index(name)] != value:
        return [f"{where}: {kind} {ui_node['id']}'s {name!r} differs between the UI and API copies"]
    return []


def test_every_api_workflow_has_its_map_and_every_map_its_workflow():
    assert API
    assert [_map_path(p) for p in API] == MAPS, "want workflows/api/<name>.inputs.json beside each <name>.json"


@pytest.mark.parametrize("api_path", API, ids=[p.stem for p in API])
def test_map_points_at_widget_values_in_both_copies(api_path, widgets):
    problems = map_problems(_load(_map_path(api_path)), _load(api_path), _load(WORKFLOWS / api_path.name), widgets)
    assert not problems, f"{_map_path(api_path).name}:\n" + "\n".join(problems)


def test_basic_map_names_the_generate_arguments():
    """pulid_basic is what `generate` fills: its arguments are the command's, every option that is no run
    option has its entry, and the image is the saved one."""
    args = build_parser().parse_args(["generate", "--server", "URL", "--face", "F", "--prompt", "P", "--out", "O"])
    options = set(vars(args)) - {"command", "verbose"}
    basic = _load(WORKFLOWS / "api" / "pulid_basic.inputs.json")
    assert set(basic["inputs"]) == options - RUN_OPTIONS
    assert basic["outputs"] == {"image": {"node": "15", "class_type": "SaveImage"}}


def test_the_check_can_fail(widgets):
    """A link, a missing node, a wrong type, a widget the UI lacks and a changed value are each caught."""
    api, ui = _load(WORKFLOWS / "api" / "pulid_basic.json"), _load(WORKFLOWS / "pulid_basic.json")
    good = _load(WORKFLOWS / "api" / "pulid_basic.inputs.json")
    assert not map_problems(good, api, ui, widgets)
    bad = json.loads(json.dumps(good))
    bad["inputs"]["linked"] = {"node": "13", "class_type": "KSampler", "input": "model"}
    bad["inputs"]["gone"] = {"node": "99", "class_type": "KSampler", "input": "seed"}
    bad["inputs"]["retyped"] = {"node": "13", "class_type": "KSamplerAdvanced", "input": "seed"}
    bad["outputs"]["ghost"] = {"node": "98", "class_type": "SaveImage"}
    changed = json.loads(json.dumps(api))
    changed["13"]["inputs"]["steps"] = 7
    ui_without = json.loads(json.dumps(ui))
    next(n for n in ui_without["nodes"] if n["id"] == 12)["widgets_values"] = []
    found = "\n".join(map_problems(bad, api, ui, widgets) + map_problems(good, changed, ui_without, widgets))
    for expected in ("'linked': KSampler 13's 'model' in the API copy is a link", "'gone': the API copy has no",
                     "'retyped': the UI copy has no KSamplerAdvanced node 13", "output 'ghost': the API copy",
                     "'steps': KSampler 13's 'steps' differs", "'width': EmptyLatentImage 12 in the UI copy has no"):
        assert expected in found, f"{expected!r} not in:\n{found}"


# The workflows an artist can run as an app (the frontend's app mode, 1.49 on): extra.linearData lists the
# inputs the app shows and the node whose picture it shows. The templates open as graphs (no extra.linearMode):
# docs/app-mode.md says why.
APP_READY = ("pulid_basic", "pulid_face_fix")


def app_problems(ui, inputs_map):
    """What in `ui`'s extra.linearData the frontend would drop or show wrong, or the input map does not declare.

    The frontend shows an app input only for a widget of a node on the root graph; a widget fed by a link, or a
    muted or bypassed node, is left out or runs without it; each input must also be an entry of the input map
    (which checks it is the same widget value in both copies), and the outputs the map's."""
    data = (ui.get("extra") or {}).get("linearData")
    if not isinstance(data, dict) or not data.get("inputs") or not data.get("outputs"):
        return ["extra.linearData with inputs and outputs is missing"]
    if "linearMode" in ui["extra"]:
        return ["extra.linearMode is set: the templates open as graphs (docs/app-mode.md)"]
    nodes = {node["id"]: node for node in ui["nodes"]}
    declared = {(int(e["node"]), e["input"]) for e in inputs_map["inputs"].values()}
    problems = []
    for entry in data["inputs"]:
        node_id, widget = entry[0], entry[1]
        node = nodes.get(node_id)
        where = f"app input [{node_id}, {widget!r}]"
        if node is None:
            problems.append(f"{where}: no node {node_id}")
            continue
        if node["mode"] != 0:
            problems.append(f"{where}: node {node_id} is muted or bypassed (mode {node['mode']})")
        if any(i["name"] == widget and i.get("link") is not None for i in node["inputs"]):
            problems.append(f"{where}: the widget is fed by a link")
        if (node_id, widget) not in declared:
            problems.append(f"{where}: not an input of the input map")
    outputs = sorted(int(e["node"]) for e in inputs_map["outputs"].values())
    if sorted(data["outputs"]) != outputs:
        problems.append(f"app outputs {data['outputs']}: want the input map's {outputs}")
    problems += [f"app output {i}: muted or bypassed" for i in data["outputs"] if nodes.get(i, {}).get("mode")]
    return problems


@pytest.mark.parametrize("name", APP_READY)
def test_app_inputs_are_widgets_the_map_declares(name):
    ui, inputs_map = _load(WORKFLOWS / f"{name}.json"), _load(WORKFLOWS / "api" / f"{name}.inputs.json")
    problems = app_problems(ui, inputs_map)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_the_app_check_can_fail():
    """A linked widget, a bypassed node, an undeclared widget, a missing node, a wrong output and linearMode are
    each caught."""
    ui, inputs_map = _load(WORKFLOWS / "pulid_basic.json"), _load(WORKFLOWS / "api" / "pulid_basic.inputs.json")
    bad = json.loads(json.dumps(ui))
    bad["extra"]["linearData"] = {"inputs": [[13, "model"], [99, "seed"], [12, "batch_size"], [7, "weight", {}]],
                                  "outputs": [6]}
    bad["nodes"][[n["id"] for n in bad["nodes"]].index(7)]["mode"] = 4
    next(n for n in bad["nodes"] if n["id"] == 13)["inputs"].append({"name": "model", "type": "MODEL", "link": 10})
    found = "\n".join(app_problems(bad, inputs_map))
    for expected in ("[13, 'model']: the widget is fed by a link", "[99, 'seed']: no node 99",
                     "[12, 'batch_size']: not an input of the input map", "[7, 'weight']: node 7 is muted",
                     "app outputs [6]: want the input map's [15]"):
        assert expected in found, f"{expected!r} not in:\n{found}"
    bad["extra"]["linearMode"] = True
    assert app_problems(bad, inputs_map) == ["extra.linearMode is set: the templates open as graphs "
                                             "(docs/app-mode.md)"]
