"""Where the ComfyUI frontend draws a UI-format workflow's nodes, slots and links, computed from the JSON.

These are the frontend's own measures (litegraph, frontends 1.27 to 1.49): the title bar is 30 px tall and sits
above `pos`; the slots are 20 px apart, the first 14 px below `pos`; an input's dot is 10 px inside the left
edge, an output's 9 px inside the right edge. Inputs that belong to a widget are drawn at the widget and are
not counted in the slot rows. layout.py places nodes and routes wires with them, and the tests check the
shipped workflows' layout with them (testkit/layout_checks.py). Every function takes graph types.
"""
from dataclasses import dataclass

TITLE_HEIGHT = 30
SLOT_HEIGHT = 20
SLOT_OFFSET = 0.7  # the first slot's centre, in slot heights below pos
REROUTE_RADIUS = 10  # a reroute's dot as the frontend draws it


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
    (x, y), (width, height) = pair(node.pos, [0, 0]), pair(node.size, [200, 100])
    return Box(x, y - TITLE_HEIGHT, width, height + TITLE_HEIGHT)


def group_box(group):
    return Box(*group.bounding)


def output_slot(node, index):
    (x, y), (width, _) = pair(node.pos, [0, 0]), pair(node.size, [200, 100])
    return x + width - 9, y + (index + SLOT_OFFSET) * SLOT_HEIGHT


def input_slot(node, index):
    """The dot of input `index` (its place in node.inputs); None for an input drawn at its widget."""
    inputs = node.inputs or []
    if inputs[index].has_widget:
        return None
    row = sum(1 for entry in inputs[:index] if not entry.has_widget)
    x, y = pair(node.pos, [0, 0])
    return x + 10, y + (row + SLOT_OFFSET) * SLOT_HEIGHT


def link_ends(link, nodes):
    """The output dot and the input dot of `link` (nodes: id -> node); the input's is None at a widget."""
    return (output_slot(nodes[link.origin_id], link.origin_slot),
            input_slot(nodes[link.target_id], link.target_slot))


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


def extent(workflow):
    """The box around every node, group and reroute."""
    boxes = [node_box(n) for n in workflow.nodes] + [group_box(g) for g in workflow.groups or []]
    boxes += [Box(r.pos[0] - REROUTE_RADIUS, r.pos[1] - REROUTE_RADIUS, 2 * REROUTE_RADIUS, 2 * REROUTE_RADIUS)
              for r in workflow.reroutes]
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    return Box(x0, y0, max(b.right for b in boxes) - x0, max(b.bottom for b in boxes) - y0)
