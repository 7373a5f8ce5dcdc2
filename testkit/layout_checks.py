"""The checks tests/test_workflow_layout.py makes of a workflow's layout, computed as the frontend draws it
(workflow_files.geometry): wires through nodes, wires running backwards, overlapping nodes. tools/relayout.py
logs them for the layouts it writes.
"""
from dataclasses import dataclass

from workflow_files.geometry import link_ends, node_box, segment_hits

SCREEN = (1600, 1000)  # what a shipped workflow must fit at zoom 1


@dataclass(frozen=True)
class Wire:
    """A link as drawn."""

    id: int
    source: int
    target: int
    points: tuple  # output dot, the reroutes it runs through (the frontend's native ones), input dot

    @property
    def segments(self):
        return list(zip(self.points, self.points[1:]))


def wires(workflow):
    """Every link as straight segments: output dot, reroutes, input dot (widget inputs left out). The
    frontend draws splines by default; between the same points they stay close to the segments."""
    nodes = {n.id: n for n in workflow.nodes}
    found = []
    for link in workflow.links or []:
        start, end = link_ends(link, nodes)
        if end is None:
            continue
        chain = [tuple(reroute.pos) for reroute in workflow.reroute_chain(link.id)]
        found.append(Wire(link.id, link.origin_id, link.target_id, (start, *chain, end)))
    return found


def crossings(workflow, margin=4):
    """(link id, node id) for each link whose segment passes through a node other than its two ends."""
    boxes = {n.id: node_box(n).shrunk(margin) for n in workflow.nodes}
    return sorted({(wire.id, node_id) for wire in wires(workflow) for start, end in wire.segments
                   for node_id, box in boxes.items()
                   if node_id not in (wire.source, wire.target) and segment_hits(start, end, box)})


def backward_links(workflow):
    """Links that run right to left somewhere (a wire looping back across its own nodes)."""
    return [wire.id for wire in wires(workflow) if any(end[0] < start[0] for start, end in wire.segments)]


def overlaps(workflow, gap=10):
    """Pairs of node ids whose boxes are closer than `gap`."""
    nodes = workflow.nodes
    boxes = [node_box(n) for n in nodes]
    return [(nodes[i].id, nodes[j].id) for i in range(len(nodes)) for j in range(i + 1, len(nodes))
            if boxes[i].overlaps(boxes[j], gap)]
