"""`python -m pulid_cli migrate`: cubiq PuLID_ComfyUI workflows (UI and API format) become ours, value by value,
every other node and link unchanged, the new nodes placed clear of the others, refusals with a reason."""
import json

import pytest

from testkit import cubiq_workflows as cw
from pulid.errors import PulidError
from pulid_cli import main as cli
from testkit.pack import import_pack
from workflow_files import cubiq as migrate_module
from workflow_files.migrate import migrate


def by_id(workflow):
    return {n["id"]: n for n in workflow["nodes"]}


@pytest.fixture(scope="module")
def migrated():
    return migrate(cw.ui())


def test_every_cubiq_node_is_replaced_value_by_value(migrated):
    nodes = by_id(migrated.workflow)
    assert 19 not in nodes  # the EVA-CLIP loader: part of the face encoder loader now
    assert nodes[16]["type"] == "PuLIDSDXLModelLoader" and nodes[16]["widgets_values"] == [cw.PULID_FILE]
    assert nodes[17]["type"] == "PuLIDSDXLFaceEncoderLoader"
    assert nodes[17]["widgets_values"] == ["EVA02_CLIP_L_336_psz14_s6B.pt", "antelopev2", "CUDA"]
    # ApplyPulid [method, weight, start_at, end_at] -> ours [weight, method, start_at, end_at]
    assert nodes[33]["type"] == "PuLIDSDXLApply" and nodes[33]["widgets_values"] == [0.7, "style", 0.1, 0.9]
    assert nodes[34]["widgets_values"] == [1.1, "neutral", 0.0, 1.0]
    # Advanced [weight, projection, fidelity, noise, start_at, end_at] -> [weight, start_at, end_at, num_zero, ortho]
    assert nodes[35]["type"] == "PuLIDSDXLApplyAdvanced" and nodes[35]["widgets_values"] == [0.9, 0.05, 0.8, 12, "v1"]
    assert not [n for n in migrated.workflow["nodes"] if n["type"] in ("PulidModelLoader", "ApplyPulid")]


def _source(workflow, node_id, name):
    """(origin node, origin slot) feeding input `name` of node `node_id`."""
    node = by_id(workflow)[node_id]
    (entry,) = [i for i in node["inputs"] if i["name"] == name]
    link = next(link for link in workflow["links"] if link[0] == entry["link"])
    assert link[3] == node_id and node["inputs"].index(entry) == link[4]
    return link[1], link[2]


def test_one_encode_face_per_photo_and_noise(migrated):
    wf = migrated.workflow
    encodes = {n["id"]: n for n in wf["nodes"] if n["type"] == "PuLIDSDXLEncodeFace"}
    assert len(encodes) == 2  # face.png shared by the two ApplyPulid, face2.png (noise 0.2) for the Advanced
    first, _ = _source(wf, 33, "embeds")
    assert _source(wf, 34, "embeds")[0] == first
    second, _ = _source(wf, 35, "embeds")
    assert second != first
    assert encodes[first]["widgets_values"] == ["largest", "auto", 0.0, False]
    assert encodes[second]["widgets_values"] == ["largest", "auto", 0.2, False]
    assert _source(wf, first, "image") == (12, 0) and _source(wf, second, "image") == (13, 0)
    for encode in encodes:
        assert _source(wf, encode, "pulid_model") == (16, 0) and _source(wf, encode, "face_encoder") == (17, 0)
    assert _source(wf, 33, "attn_mask") == (40, 0) and _source(wf, 35, "attn_mask") == (40, 0)
    assert _source(wf, 34, "model") == (33, 0) and _source(wf, 33, "pulid_model") == (16, 0)


def test_links_are_consistent_and_typed(migrated):
    wf = migrated.workflow
    nodes = by_id(wf)
    ids = [link[0] for link in wf["links"]]
    assert len(ids) == len(set(ids)) and wf["last_link_id"] == max(ids) and wf["last_node_id"] == max(nodes)
    for link_id, origin, slot, target, target_slot, kind in wf["links"]:
        assert link_id in nodes[origin]["outputs"][slot]["links"]
        assert nodes[target]["inputs"][target_slot]["link"] == link_id
        assert nodes[origin]["outputs"][slot]["type"] == kind == nodes[target]["inputs"][target_slot]["type"]
    for node in wf["nodes"]:
        for slot, out in enumerate(node.get("outputs", [])):
            for link_id in out.get("links") or []:
                assert next(link for link in wf["links"] if link[0] == link_id)[1:3] == [node["id"], slot]
    assert not {"PULID", "FACEANALYSIS", "EVA_CLIP"} & {link[5] for link in wf["links"]}


@pytest.mark.parametrize("keep_layout", [True, False])
def test_everything_else_is_unchanged(keep_layout):
    """Nodes, links and values stay; with keep_layout also every place, group and extra, and without it only
    the places change (the groups go, named in the notes)."""
    before = cw.ui()
    migrated = migrate(before, keep_layout=keep_layout)
    after = migrated.workflow
    cubiq = {n["id"] for n in before["nodes"] if n["type"] in ("PulidModelLoader", "PulidEvaClipLoader",
                                                                "PulidInsightFaceLoader", "ApplyPulid",
                                                                "ApplyPulidAdvanced")}
    new = by_id(after)
    placed = set() if keep_layout else {"pos", "size"}

    def without_output_links(node):  # a photo feeding two applies now feeds one Encode Face: one link fewer
        return {**{k: v for k, v in node.items() if k not in placed},
                "outputs": [{k: v for k, v in out.items() if k != "links"} for out in node["outputs"]]}

    for node in before["nodes"]:
        if node["id"] not in cubiq:
            assert without_output_links(new[node["id"]]) == without_output_links(node), \
                f"node {node['id']} ({node['type']}) changed"
            if keep_layout and not any(link[1] == node["id"] and link[3] in cubiq for link in before["links"]):
                assert new[node["id"]] == node
    untouched = [link for link in before["links"] if link[1] not in cubiq and link[3] not in cubiq]
    assert all(link in after["links"] for link in untouched)
    if keep_layout:
        assert after["groups"] == before["groups"] and after["extra"] == before["extra"]
        for node in before["nodes"]:
            if node["id"] in cubiq and node["id"] in new:
                assert new[node["id"]]["pos"] == node["pos"]  # replaced in place
    else:
        assert after["groups"] == [] and before["groups"]
        assert any("groups" in note and "--keep-layout" in note for note in migrated.notes)


def _box(node):
    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - 30, x + w, y + h  # with the title bar


def test_new_nodes_overlap_nothing(migrated):
    nodes = migrated.workflow["nodes"]
    old = {n["id"] for n in cw.ui()["nodes"]}
    for node in (n for n in nodes if n["id"] not in old):
        a = _box(node)
        for other in (o for o in nodes if o is not node):
            b = _box(other)
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], \
                f"new node {node['id']} ({node['type']}) overlaps {other['id']} ({other['type']})"


def test_what_has_no_equivalent_is_reported_and_noted_in_the_graph(migrated):
    text = "\n".join(migrated.notes)
    assert "ortho_v2" in text and "noise 0.2" in text and "zero tokens" in text
    (note,) = [n for n in migrated.workflow["nodes"] if n["type"] == "Note"]
    assert all(line in note["widgets_values"][0] for line in migrated.notes)


def test_api_prompt_is_migrated_too():
    result = migrate(cw.api())
    prompt = result.workflow
    assert result.format == "api" and "19" not in prompt
    assert prompt["17"] == {"class_type": "PuLIDSDXLFaceEncoderLoader", "_meta": {"title": "PuLIDSDXLFaceEncoderLoader"},
                            "inputs": {"eva_clip_file": "EVA02_CLIP_L_336_psz14_s6B.pt",
                                       "insightface_model": "antelopev2", "provider": "CUDA"}}
    apply = prompt["33"]["inputs"]
    assert prompt["33"]["class_type"] == "PuLIDSDXLApply"
    assert {k: apply[k] for k in ("weight", "method", "start_at", "end_at")} == \
        {"weight": 0.7, "method": "style", "start_at": 0.1, "end_at": 0.9}
    assert apply["model"] == ["4", 0] and apply["pulid_model"] == ["16", 0] and apply["attn_mask"] == ["40", 0]
    assert prompt["34"]["inputs"]["embeds"] == apply["embeds"]
    encode = prompt[apply["embeds"][0]]
    assert encode["class_type"] == "PuLIDSDXLEncodeFace" and encode["inputs"]["image"] == ["12", 0]
    advanced = prompt["35"]["inputs"]
    assert (advanced["num_zero"], advanced["ortho"]) == (12, "v1")
    assert prompt[advanced["embeds"][0]]["inputs"]["noise"] == 0.2
    for key in ("3", "4", "5", "8", "9", "12", "13", "22", "23", "40", "50"):
        assert prompt[key] == cw.api()[key]


@pytest.mark.parametrize("data,message", [
    ({"hello": "world"}, "not a ComfyUI workflow"),
    ([1, 2], "not a ComfyUI workflow"),
    (cw.ui(without={16, 19, 17, 33, 34, 35}), "no node of cubiq"),
])
def test_refuses_what_it_cannot_migrate(data, message):
    with pytest.raises(PulidError, match=message):
        migrate(data)


def test_command_line(tmp_path, capsys, caplog):
    source = tmp_path / "cubiq.json"
    source.write_text(json.dumps(cw.ui()))
    assert cli.main(["migrate", str(source)]) == 0
    out = capsys.readouterr().out
    written = tmp_path / "cubiq_pulid_sdxl.json"
    assert json.loads(written.read_text()) == migrate(cw.ui()).workflow
    assert "note: " in out and str(written) in out
    assert json.loads(source.read_text()) == cw.ui()  # the input is never changed
    kept = tmp_path / "kept.json"
    assert cli.main(["migrate", str(source), "-o", str(kept), "--keep-layout"]) == 0
    assert json.loads(kept.read_text()) == migrate(cw.ui(), keep_layout=True).workflow != json.loads(
        written.read_text())
    assert cli.main(["migrate", str(source)]) == 1  # would overwrite the earlier output: needs -o
    assert cli.main(["migrate", str(source), "-o", str(source)]) == 0  # unless -o says so
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert cli.main(["migrate", str(broken), "-o", str(tmp_path / "x.json")]) == 1
    assert "is not JSON" in caplog.text


WIDGET_KINDS = {"INT", "FLOAT", "STRING", "BOOLEAN"}  # with a list of choices: an input drawn as a widget


def declared(cls):
    """(sockets [(name, type)], widget names, outputs [(name, type)]) of a node class, in its order."""
    spec = cls.INPUT_TYPES()
    inputs = {**spec["required"], **spec.get("optional", {})}
    widgets = tuple(name for name, (kind, *_) in inputs.items() if isinstance(kind, list) or kind in WIDGET_KINDS)
    sockets = tuple((name, kind) for name, (kind, *_) in inputs.items() if name not in widgets)
    return sockets, widgets, tuple(zip(cls.RETURN_NAMES, cls.RETURN_TYPES))


def test_migrates_tables_of_our_nodes_are_their_input_types():
    """Migrate writes widgets_values by position and links by slot from its own table (the CLI runs without
    the nodes' torch side): each entry must be the node's INPUT_TYPES and RETURN_TYPES, in order."""
    classes = import_pack().NODE_CLASS_MAPPINGS
    assert set(migrate_module.OUR_TYPE.values()) | {"PuLIDSDXLEncodeFace"} == set(migrate_module.OURS)
    for node_type, ours in migrate_module.OURS.items():
        assert (ours.inputs, ours.widgets, ours.outputs) == declared(classes[node_type]), node_type
    encode = classes["PuLIDSDXLEncodeFace"].INPUT_TYPES()["required"]
    defaults = migrate_module.ENCODE_DEFAULTS
    assert defaults == {name: encode[name][1]["default"] for name in defaults}
