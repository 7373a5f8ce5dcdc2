"""Where the ComfyUI frontend draws a UI-format workflow's nodes, slots and links, computed from the JSON.

The workflows we ship are read by artists at a glance, so their layout is checked like code: no overlapping
nodes, no link whose straight segment runs through another node, everything inside one screen. These are the
frontend's own measures (litegraph, frontends 1.27 to 1.49): the title bar is 30 px tall and sits above
`pos`; the slots are 20 px apart, the first 14 px below `pos`; an input's dot is 10 px inside the left
edge, an output's 9 px inside the right edge. Inputs that belong to a widget are drawn at the widget and
are not counted in the slot rows.
"""
from dataclasses import dataclass

TITLE_HEIGHT = 30
SLOT_HEIGHT = 20
SLOT_OFFSET = 0.7  # the first slot's centre, in slot heights below pos
GROUP_TITLE = 40  # the room a group's title takes above its first node's title bar


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self):
        return self.x + self.width

    @property
    def bottom(self):
        return self.y + self.height

    def overlaps(self, other, gap=0.0):
        return (self.x < other.right + gap and other.x < self.right + gap
                and self.y < other.bottom + gap and other.y < self.bottom + gap)

    def contains(self, other):
        return (self.x <= other.x and self.y <= other.y and other.right <= self.right
                and other.bottom <= self.bottom)

    def shrunk(self, margin):
        return Box(self.x + margin, self.y + margin, self.width - 2 * margin, self.height - 2 * margin)


def pair(value, default):
    """A node's pos or size: [a, b], or {"0": a, "1": b} as older frontends saved it."""
    value = value or default
    if isinstance(value, dict):
        value = [value.get("0", default[0]), value.get("1", default[1])]
    return float(value[0]), float(value[1])


def node_box(node):
    """The node as drawn, title bar included."""
    (x, y), (width, height) = pair(node.get("pos"), [0, 0]), pair(node.get("size"), [200, 100])
    return Box(x, y - TITLE_HEIGHT, width, height + TITLE_HEIGHT)


def group_box(group):
    return Box(*group["bounding"])


def output_slot(node, index):
    (x, y), (width, _) = pair(node.get("pos"), [0, 0]), pair(node.get("size"), [200, 100])
    return x + width - 9, y + (index + SLOT_OFFSET) * SLOT_HEIGHT


def input_slot(node, index):
    """The dot of input `index` (its place in node["inputs"]); None for an input drawn at its widget."""
    inputs = node.get("inputs") or []
    if "widget" in inputs[index]:
        return None
    row = sum(1 for entry in inputs[:index] if "widget" not in entry)
    x, y = pair(node.get("pos"), [0, 0])
    return x + 10, y + (row + SLOT_OFFSET) * SLOT_HEIGHT


@dataclass(frozen=True)
class Link:
    id: int
    source: int
    target: int
    points: tuple  # output dot, the reroutes it runs through (the frontend's native ones), input dot

    @property
    def segments(self):
        return list(zip(self.points, self.points[1:]))


def links(workflow):
    """Every link as the wire the frontend draws straight: output dot, reroutes, input dot (widget inputs
    left out). A link's `parentId` (extra.linkExtensions) names the reroute next to its input; each reroute
    names the one before it."""
    nodes = {n["id"]: n for n in workflow["nodes"]}
    extra = workflow.get("extra") or {}
    reroutes = {r["id"]: r for r in extra.get("reroutes") or []}
    parents = {e["id"]: e["parentId"] for e in extra.get("linkExtensions") or []}
    found = []
    for link_id, source, out_slot, target, in_slot, *_ in workflow.get("links", []):
        end = input_slot(nodes[target], in_slot)
        if end is None:
            continue
        chain, reroute = [], parents.get(link_id)
        while reroute is not None:
            chain.insert(0, tuple(reroutes[reroute]["pos"]))
            reroute = reroutes[reroute].get("parentId")
        found.append(Link(link_id, source, target, (output_slot(nodes[source], out_slot), *chain, end)))
    return found


def segment_hits(start, end, box):
    """Whether the segment start-end passes through `box` (Liang-Barsky clipping)."""
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    low, high = 0.0, 1.0
    for p, q in ((-dx, x0 - box.x), (dx, box.right - x0), (-dy, y0 - box.y), (dy, box.bottom - y0)):
        if p == 0:
            if q < 0:
                return False
            continue
        t = q / p
        if p < 0:
            low = max(low, t)
        else:
            high = min(high, t)
        if low > high:
            return False
    return True


def crossings(workflow, margin=4):
    """(link id, node id) for each link whose segment passes through a node other than its two ends."""
    boxes = {n["id"]: node_box(n).shrunk(margin) for n in workflow["nodes"]}
    return sorted({(link.id, node_id) for link in links(workflow) for start, end in link.segments
                   for node_id, box in boxes.items()
                   if node_id not in (link.source, link.target) and segment_hits(start, end, box)})


def backward_links(workflow):
    """Links that run right to left somewhere (a wire looping back across its own nodes)."""
    return [link.id for link in links(workflow) if any(end[0] < start[0] for start, end in link.segments)]


def overlaps(workflow, gap=10):
    """Pairs of node ids whose boxes are closer than `gap`."""
    nodes = workflow["nodes"]
    boxes = [node_box(n) for n in nodes]
    return [(nodes[i]["id"], nodes[j]["id"]) for i in range(len(nodes)) for j in range(i + 1, len(nodes))
            if boxes[i].overlaps(boxes[j], gap)]


def extent(workflow):
    """The box around every node, group and reroute."""
    boxes = [node_box(n) for n in workflow["nodes"]] + [group_box(g) for g in workflow.get("groups") or []]
    reroutes = (workflow.get("extra") or {}).get("reroutes") or []
    boxes += [Box(r["pos"][0] - 5, r["pos"][1] - 5, 10, 10) for r in reroutes]
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    return Box(x0, y0, max(b.right for b in boxes) - x0, max(b.bottom for b in boxes) - y0)
