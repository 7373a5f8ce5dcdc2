"""workflow_files.graph: a UI workflow read into named types writes back the same bytes (unknown and absent keys
kept where they were), its lookups agree with the raw lists, and its edits keep both ends of a link in step."""
import copy
import json
from pathlib import Path

import pytest

from testkit import cubiq_workflows
from workflow_files.graph import Input, Link, Node, Output, Reroute, Workflow
from workflow_files.records import UNSET

WORKFLOWS = sorted((Path(__file__).resolve().parents[1] / "workflows").glob("*.json"))


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_shipped_workflow_round_trips_byte_for_byte(path):
    text = path.read_text(encoding="utf-8")
    written = Workflow.from_dict(json.loads(text)).to_dict()
    assert json.dumps(written, indent=1, ensure_ascii=False) + "\n" == text


def _odd_workflow():
    """The cubiq graph with what a newer frontend or another pack writes: unknown keys at every level, keys
    left out, an old-style pos, reroutes."""
    data = cubiq_workflows.ui()
    data = {"id": "5d3c", "revision": 0, **data, "definitions": {"subgraphs": []}}
    node = data["nodes"][0]
    node.update(color="#322", bgcolor="#533", pos={"0": 10, "1": 20})
    del node["size"], node["flags"]
    node["outputs"][0]["localized_name"] = "MODEL"
    del node["outputs"][1]["slot_index"]
    data["nodes"][7]["inputs"][0].update(shape=7, localized_name="model")
    data["nodes"][7]["inputs"].append({"name": "weight", "type": "FLOAT", "widget": {"name": "weight"},
                                       "link": None})
    data["groups"][0]["id"] = 3
    data["extra"] = {"frontendVersion": "1.28.0", "ds": data["extra"]["ds"],
                     "reroutes": [{"id": 1, "pos": [5.0, 6.0], "linkIds": [5], "floating": {"slotType": "output"}},
                                  {"id": 2, "parentId": 1, "pos": [8.0, 6.0], "linkIds": [5]}],
                     "linkExtensions": [{"id": 5, "parentId": 2}]}
    return data


def test_unknown_and_absent_keys_round_trip_in_place():
    data = _odd_workflow()
    before = copy.deepcopy(data)
    workflow = Workflow.from_dict(data)
    assert json.dumps(workflow.to_dict()) == json.dumps(data)
    assert data == before  # read, never changed
    node = workflow.nodes[0]
    assert node.size is UNSET and node.get("size", [1, 2]) == [1, 2] and node.unknown == {"color": "#322",
                                                                                           "bgcolor": "#533"}
    assert workflow.unknown == {"id": "5d3c", "revision": 0, "definitions": {"subgraphs": []}}
    assert [r.parent_id for r in workflow.reroutes] == [UNSET, 1] and workflow.reroutes[0].unknown
    assert workflow.nodes[7].input("weight").has_widget and not workflow.nodes[7].input("weight").connected
    # A key set anew goes after the file's keys; one set to UNSET is left out; the file's order stays.
    node.title, node.order = "Mine", UNSET
    assert list(workflow.to_dict()["nodes"][0]) == [k for k in data["nodes"][0] if k != "order"] + ["title"]


def test_to_dict_is_fresh_data():
    workflow = Workflow.from_dict(cubiq_workflows.ui())
    written = workflow.to_dict()
    written["nodes"][0]["pos"][0] = 999
    written["links"][0][1] = 999
    assert workflow.nodes[0].pos[0] != 999 and workflow.links[0].origin_id != 999


def test_lookups_agree_with_the_raw_lists():
    data = json.loads(WORKFLOWS[0].read_text(encoding="utf-8"))
    workflow = Workflow.from_dict(data)
    raw = data["links"]
    for node in data["nodes"]:
        assert [l.to_list() for l in workflow.links_into(node["id"])] == [l for l in raw if l[3] == node["id"]]
        assert [l.to_list() for l in workflow.links_from(node["id"])] == [l for l in raw if l[1] == node["id"]]
        assert [l.id for l in workflow.links_from(node["id"], 1)] == [l[0] for l in raw
                                                                       if l[1] == node["id"] and l[2] == 1]
        assert workflow.node(node["id"]).type == node["type"]
    assert [l.id for l in workflow.links_of_type("MODEL")] == [l[0] for l in raw if l[5] == "MODEL"]
    assert workflow.node(10 ** 6) is None and workflow.link(10 ** 6) is None
    extra = data["extra"]
    reroutes = {r["id"]: r for r in extra["reroutes"]}
    for extension in extra["linkExtensions"]:
        chain, parent = [], extension["parentId"]
        while parent is not None:
            chain.insert(0, reroutes[parent]["pos"])
            parent = reroutes[parent].get("parentId")
        assert [r.pos for r in workflow.reroute_chain(extension["id"])] == chain
    assert workflow.reroute_chain(next(l[0] for l in raw if l[0] not in {e["id"] for e in extra["linkExtensions"]})) \
        == []


def _consistent(workflow):
    """Every link is listed by its output and named by its input, and nothing else is."""
    for link in workflow.links:
        assert link.id in workflow.node(link.origin_id).outputs[link.origin_slot].links
        assert workflow.node(link.target_id).inputs[link.target_slot].link == link.id
    for node in workflow.nodes:
        for slot, output in enumerate(node.outputs or []):
            assert all(workflow.link(i).origin_id == node.id and workflow.link(i).origin_slot == slot
                       for i in output.links or [])
        for slot, entry in enumerate(node.inputs or []):
            assert not entry.connected or workflow.link(entry.link).target_slot == slot


def test_edits_keep_both_ends_of_a_link_in_step():
    workflow = Workflow.from_dict(cubiq_workflows.ui())
    _consistent(workflow)
    image, apply, other = workflow.node(13), workflow.node(35), workflow.node(34)
    (link,) = [l for l in workflow.links_into(apply.id) if l.type == "IMAGE"]
    workflow.disconnect(link.id)
    assert not workflow.link(link.id) and not apply.input("image").connected and link.id not in \
        image.outputs[0].links
    workflow.disconnect(link.id)  # gone already: nothing
    new = workflow.connect(image, "IMAGE", apply, "image")
    assert new.id == max(l.id for l in workflow.links) and apply.input("image").link == new.id
    assert workflow.link_into(apply, "image") is new and new.type == "IMAGE" and new.source == (image.id, 0)
    _consistent(workflow)
    old = workflow.link_into(other, "image")
    workflow.disconnect(old.id)
    assert workflow.link_into(other, "image") is None
    workflow.retarget(new, other, "image")
    assert other.input("image").link == new.id and not apply.input("image").connected
    _consistent(workflow)
    second = workflow.branch(new, apply, "image")  # a second wire from the same output
    assert second.source == new.source and workflow.link_into(apply, "image") is second
    _consistent(workflow)
    with pytest.raises(KeyError, match="no input called 'face'"):
        workflow.connect(image, "IMAGE", apply, "face")
    with pytest.raises(KeyError, match="no output called 'LATENT'"):
        workflow.connect(image, "LATENT", apply, "image")
    workflow.remove_node(workflow.node(19))
    assert not workflow.node(19) and not [l for l in workflow.links if 19 in (l.origin_id, l.target_id)]
    _consistent(workflow)


def test_new_records_write_their_fields_in_order():
    node = Node(7, "Note", pos=[0, 0], inputs=[Input(name="a", type="INT", link=None)],
                outputs=[Output(name="b", type="INT", links=[], slot_index=0)], widgets_values=["x"])
    assert node.to_dict() == {"id": 7, "type": "Note", "pos": [0, 0],
                              "inputs": [{"name": "a", "type": "INT", "link": None}],
                              "outputs": [{"name": "b", "type": "INT", "links": [], "slot_index": 0}],
                              "widgets_values": ["x"]}
    assert list(Reroute(2, pos=[1.0, 2.0], link_ids=[3], parent_id=1).to_dict()) == ["id", "pos", "linkIds",
                                                                                      "parentId"]
    with pytest.raises(ValueError, match="6 entries"):
        Link.from_list([1, 2, 0, 3, 0])
