"""The shipped workflows read at a glance: computed from their JSON as the frontend draws them
(workflow_files/geometry.py, testkit/layout_checks.py), every workflow has no wire through a node, no overlapping nodes or groups, one Note,
and fits one 1600x1000 screen at zoom 1. tools/relayout.py makes layouts that pass."""
import json
from pathlib import Path

import pytest

from testkit import cubiq_workflows
from testkit.layout_checks import SCREEN, backward_links, crossings, overlaps
from workflow_files.geometry import extent, group_box, node_box
from workflow_files.graph import Workflow
from workflow_files.migrate import migrate
from workflow_files.records import UNSET

WORKFLOWS = sorted((Path(__file__).resolve().parents[1] / "workflows").glob("*.json"))


def _load(path):
    return Workflow.from_dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_no_wire_runs_through_a_node(path):
    workflow = _load(path)
    hits = crossings(workflow)
    assert not hits, f"{path.name}: (link, node) pairs where a wire runs through a node: {hits}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_no_overlaps_and_groups_hold_their_nodes(path):
    workflow = _load(path)
    assert not overlaps(workflow), f"{path.name}: overlapping nodes {overlaps(workflow)}"
    groups = [group_box(g) for g in workflow.groups]
    clashes = [(workflow.groups[i].title, workflow.groups[j].title) for i in range(len(groups))
               for j in range(i + 1, len(groups)) if groups[i].overlaps(groups[j])]
    assert not clashes, f"{path.name}: overlapping groups {clashes}"
    titles = {g.title for g in workflow.groups}
    assert "Identity (PuLID)" in titles and len(groups) >= 2, titles
    # A node is either wholly inside one group or outside all of them.
    for node in workflow.nodes:
        box = node_box(node)
        inside = [g for g in groups if g.overlaps(box)]
        assert len(inside) <= 1 and all(g.contains(box) for g in inside), \
            f"{path.name}: node #{node.id} {node.type} straddles a group's edge"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_fits_one_screen_with_one_note(path):
    """At zoom 1, from where the file opens (its saved view), every node, group and reroute is on one screen."""
    workflow = _load(path)
    box = extent(workflow)
    view = workflow.view
    assert view["scale"] == 1.0, f"{path.name} opens at zoom {view['scale']}"
    left, top = box.x + view["offset"][0], box.y + view["offset"][1]
    assert left >= 0 and top >= 0 and left + box.width <= SCREEN[0] and top + box.height <= SCREEN[1], \
        f"{path.name}: {box.width}x{box.height} at ({left}, {top}) does not fit {SCREEN}"
    notes = [n for n in workflow.nodes if n.type == "Note"]
    assert len(notes) == 1, f"{path.name}: {len(notes)} Note nodes"
    text = notes[0].widgets_values[0]
    assert "weight" in text or "filename_prefix" in text, f"{path.name}: the Note names no knob: {text!r}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_ids_and_reroutes_are_whole(path):
    """No node id above last_node_id (the frontend would give a new node a taken id); each link's reroute
    chain exists and its reroutes list the link (the frontend drops the others)."""
    workflow = _load(path)
    assert max(n.id for n in workflow.nodes) <= workflow.last_node_id
    reroutes = {r.id: r for r in workflow.reroutes}
    for entry in workflow.link_extensions:
        reroute, seen = entry.parent_id, set()
        while reroute is not UNSET:
            assert reroute not in seen, f"{path.name}: reroutes {seen} form a loop"
            seen.add(reroute)
            assert entry.id in reroutes[reroute].link_ids, (path.name, entry, reroute)
            reroute = reroutes[reroute].parent_id
    # No two reroutes in one place: the frontend would draw one dot for two wires.
    places = [tuple(r.pos) for r in reroutes.values()]
    assert len(places) == len(set(places)), f"{path.name}: reroutes on top of each other"


def test_checks_can_fail():
    """A wire through a node, an overlap and a too-wide graph are each caught."""
    workflow = _load(WORKFLOWS[0])
    apply = next(n for n in workflow.nodes if n.type.startswith("PuLIDSDXLApply"))
    sampler = next(n for n in workflow.nodes if n.type == "KSampler")
    apply.pos = list(sampler.pos)
    assert overlaps(workflow) and crossings(workflow)
    apply.pos = [5000, 0]
    assert extent(workflow).width > SCREEN[0]


def test_migrated_graph_is_relaid_without_wires_through_nodes():
    workflow = Workflow.from_dict(migrate(cubiq_workflows.ui()).workflow)
    assert not crossings(workflow) and not overlaps(workflow)
    assert workflow.reroutes and not backward_links(workflow)


def test_migrate_keeping_the_layout_places_its_nodes_on_free_canvas():
    """--keep-layout keeps the artist's places; the nodes it adds (Encode Face, the notes) overlap none."""
    before = Workflow.from_dict(cubiq_workflows.ui())
    after = Workflow.from_dict(migrate(cubiq_workflows.ui(), keep_layout=True).workflow)
    assert [n.pos for n in after.nodes if before.node(n.id)] == [n.pos for n in before.nodes if after.node(n.id)]
    added = [n for n in after.nodes if not before.node(n.id)]
    assert added
    for node in added:
        box = node_box(node)
        others = [n for n in after.nodes if n is not node]
        assert not any(box.overlaps(node_box(o)) for o in others), f"#{node.id} {node.type}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.stem for p in WORKFLOWS])
def test_template_thumbnail_beside_it(path):
    """The template browser shows workflows/<name>.jpg (made by `python -m tools.screenshots`)."""
    from PIL import Image

    thumbnail = path.with_suffix(".jpg")
    assert thumbnail.is_file(), f"{thumbnail.name} is missing: run `make screenshots` (python -m tools.screenshots)"
    with Image.open(thumbnail) as im:
        assert im.format == "JPEG" and max(im.size) <= 640
