"""Place a UI-format workflow's nodes in columns and route its wires through reroutes that pass under no node.

The workflows we ship are read by artists at a glance, so their layout is checked like code (no overlapping
nodes, no link whose straight segment runs through another node, everything inside one screen:
tests/test_workflow_layout.py); tools/relayout.py plans the shipped ones column by column, migrate re-lays a
migrated graph with auto_columns. Where the frontend draws things is geometry.py's. Every function takes a
graph.Workflow.
"""
from .geometry import TITLE_HEIGHT, Box, extent, link_ends, node_box, output_slot, pair, segment_hits
from .graph import Group, LinkExtension, Reroute
from .records import UNSET

LEFT = 14  # where the first column starts
BAND = 50  # the band above every group that the top lanes run in
LANE_TOP = 10
GAP = 32  # between columns: the channel routed wires run down (widened when more wires need it)
LANE_STEP = 4  # the rows tried for a lane
LANE_APART = 11  # between two lanes that run side by side: their reroute dots stay apart
CHANNEL_STEP = 6  # between wires running down one gap
NODE_GAP = 20  # between two nodes of a column, title bars apart
GROUP_TITLE = 40  # the room a group's title takes above its first node's title bar


def arrange(workflow, columns, sizes, groups=()):
    """Place `workflow`'s nodes in `columns` (left to right, each [(node id, y of its top), ...]), each column
    as wide as its widest node (`sizes`: node id -> (width, height)), frame `groups` ([(title, [node ids])]),
    and route the wires: a link to the next column is a straight wire through the gap between the two; a
    longer one runs through the frontend's reroutes, along the gap right of its node, across a free horizontal
    lane, down the gap left of its target (the wires of one output share them); a wire to a node below its own
    in the same column loops through the gap between the two. A gap more wires run down than it holds is
    widened. Every link must go right (or down its column)."""
    nodes = {n.id: n for n in workflow.nodes}
    gaps = [GAP] * len(columns)
    for _ in range(4):
        column_of, spans, x = {}, [], LEFT
        for index, column in enumerate(columns):
            width = max((sizes[i][0] for i, _ in column), default=0)
            for node_id, y in column:
                nodes[node_id].pos = [x, y + BAND]
                nodes[node_id].size = [width, sizes[node_id][1]]
                column_of[node_id] = index
            spans.append((x, x + width))
            x += width + gaps[index]
        workflow.groups = [_group(title, [nodes[i] for i in ids]) for title, ids in groups]
        use = _route(workflow, nodes, column_of, spans)
        needed = [max(gaps[c], 8 + CHANNEL_STEP * use.get(c, 0) + 4) for c in range(len(gaps))]
        if needed == gaps:
            break
        gaps = needed
    else:
        raise ValueError("the column gaps did not settle: too many wires for this plan")
    box = extent(workflow)  # opens at zoom 1 with the graph's top left corner at the screen's
    workflow.view = {"scale": 1.0, "offset": [-box.x, -box.y]}
    return workflow


def auto_columns(workflow, sizes):
    """Columns for any graph: each node one column right of its furthest input (a node without inputs just left
    of its first use), a column's nodes in the order of the rows their inputs come from; nodes without links
    (notes) go under the first column."""
    nodes = {n.id: n for n in workflow.nodes}
    sources = {i: [] for i in nodes}
    for link in workflow.links or []:
        sources[link.target_id].append((link.origin_id, link.origin_slot))
    linked = {i for i, s in sources.items() if s} | {s for ss in sources.values() for s, _ in ss}
    column_of = {}

    def column(node_id, seen=()):
        if node_id not in column_of:
            if node_id in seen:
                raise ValueError(f"node #{node_id} is in a loop of links")
            column_of[node_id] = max((column(s, (*seen, node_id)) + 1 for s, _ in sources[node_id]), default=0)
        return column_of[node_id]

    for node_id in sorted(linked):
        column(node_id)
    for node_id in column_of:  # a node without inputs (an empty latent, a mask) sits just before its first use
        if not sources[node_id]:
            uses = [column_of[t] for t, ss in sources.items() if any(s == node_id for s, _ in ss)]
            column_of[node_id] = max(0, min(uses) - 1)
    columns, row_of = [], {}
    for index in range(max(column_of.values(), default=-1) + 1):
        members = [i for i in column_of if column_of[i] == index]
        if index == 0:
            members.sort(key=lambda i: pair(nodes[i].pos, [0, 0])[1])
        else:
            members.sort(key=lambda i: sum(row_of[s] + slot / 100 for s, slot in sources[i]) / len(sources[i])
                         if sources[i] else float("inf"))
        row_of.update((node_id, row) for row, node_id in enumerate(members))
        columns.append(members)
    loose = [i for i in nodes if i not in linked]
    if loose:
        columns[:1] = [(columns[0] if columns else []) + loose]
    return [_stack(members, sizes) for members in columns]


def _stack(members, sizes):
    """[(node id, y)] for nodes one under the other, title bars apart."""
    stacked, y = [], TITLE_HEIGHT + GROUP_TITLE
    for node_id in members:
        stacked.append((node_id, y))
        y += sizes[node_id][1] + TITLE_HEIGHT + NODE_GAP
    return stacked


def _group(title, members):
    boxes = [node_box(n) for n in members]
    x0, y0 = min(b.x for b in boxes) - 10, min(b.y for b in boxes) - GROUP_TITLE
    x1, y1 = max(b.right for b in boxes) + 10, max(b.bottom for b in boxes) + 10
    return Group(title=title, bounding=[x0, y0, x1 - x0, y1 - y0], color="#3f789e", font_size=24, flags={})


def _route(workflow, nodes, column_of, spans):
    """Reroutes for every wire that does not just cross to the next column. Wires from one output to columns
    further right share a lane; a wire to a node below its own in the same column (where the width of one
    screen left no other place) loops back through the gap between the two."""
    boxes = [node_box(n).shrunk(-8) for n in workflow.nodes]
    # A lane along a group's title bar would hide the title: the bars are kept clear too.
    boxes += [Box(g.bounding[0], g.bounding[1] - 4, g.bounding[2], GROUP_TITLE) for g in workflow.groups]
    reroutes, extensions, used_lanes = [], [], []
    channel_use = {}
    by_output, loops, steep = {}, [], []
    for link in workflow.links:
        if link_ends(link, nodes)[1] is None:
            continue  # into a widget: drawn where the widget is, left straight
        source, target = column_of[link.origin_id], column_of[link.target_id]
        if target < source:
            raise ValueError(f"link {link.id}: node #{link.target_id} is left of #{link.origin_id}; move it a "
                             f"column on")
        if target == source:
            loops.append(link)
        elif target > source + 1:
            by_output.setdefault((link.origin_id, link.origin_slot), []).append(link)
        elif _blocked(link, nodes):
            steep.append(link)
    # The top lanes go to the outputs highest up, whose wires would climb least to reach them.
    for (source, slot), group in sorted(by_output.items(), key=lambda item: output_slot(nodes[item[0][0]],
                                                                                        item[0][1])[1]):
        start = output_slot(nodes[source], slot)
        out_gap = _channel(spans, column_of[source], channel_use)
        targets = sorted(group, key=lambda l: column_of[l.target_id])
        far = _channel(spans, column_of[targets[-1].target_id] - 1, channel_use, peek=True)
        lane = _lane(start[1], out_gap, far, boxes, used_lanes)
        parent = _reroute(reroutes, (out_gap, start[1]), None, group)
        if lane != start[1]:
            parent = _reroute(reroutes, (out_gap, lane), parent, group)
        by_column = {}
        for link in targets:
            by_column.setdefault(column_of[link.target_id], []).append(link)
        for column, links_in in sorted(by_column.items()):
            in_gap = _channel(spans, column - 1, channel_use)
            parent = _reroute(reroutes, (in_gap, lane), parent,
                              [l for c, ls in by_column.items() if c >= column for l in ls])
            for link in links_in:
                _, end = link_ends(link, nodes)
                last = parent if end[1] == lane else _reroute(reroutes, (in_gap, end[1]), parent, [link])
                used_lanes.append((end[1], in_gap, end[0]))  # its last row: no other lane right beside it
                extensions.append(LinkExtension(link.id, parent_id=last))
    for link in loops:
        source, target = nodes[link.origin_id], nodes[link.target_id]
        start, end = link_ends(link, nodes)
        out_gap = _channel(spans, column_of[source.id], channel_use)
        in_gap = _channel(spans, column_of[target.id] - 1, channel_use)
        middle = (node_box(source).bottom + node_box(target).y) / 2
        lane = _lane(middle, in_gap, out_gap, boxes, used_lanes)
        parent = None
        for point in ((out_gap, start[1]), (out_gap, lane), (in_gap, lane), (in_gap, end[1])):
            parent = _reroute(reroutes, point, parent, [link])
        extensions.append(LinkExtension(link.id, parent_id=parent))
    for link in steep:  # to the next column, but too steep to clear its neighbours: down the gap between
        start, end = link_ends(link, nodes)
        gap = _channel(spans, column_of[link.origin_id], channel_use)
        parent = _reroute(reroutes, (gap, start[1]), None, [link])
        extensions.append(LinkExtension(link.id, parent_id=_reroute(reroutes, (gap, end[1]), parent, [link])))
    workflow.reroutes = reroutes
    workflow.link_extensions = extensions
    return channel_use


def _blocked(link, nodes):
    """Whether the straight wire of `link` runs through a node other than its two ends."""
    start, end = link_ends(link, nodes)
    return any(segment_hits(start, end, node_box(n).shrunk(4)) for i, n in nodes.items()
               if i not in (link.origin_id, link.target_id))


def _channel(spans, column, use, peek=False):
    """An x in the gap right of `column`, a new one for each wire group down it."""
    if column < 0:
        raise ValueError("a wire loops back in the first column: move its target a column on")
    left = spans[column][1]
    count = use.get(column, 0)
    if not peek:
        use[column] = count + 1
    return left + 8 + CHANNEL_STEP * count


def _lane(y, x0, x1, boxes, used):
    """The free horizontal lane between x0 and x1 nearest to y, kept apart from the lanes already taken."""
    x0, x1 = min(x0, x1), max(x0, x1)
    for distance in range(0, 2000, LANE_STEP):
        for candidate in (y - distance, y + distance):
            if candidate < LANE_TOP:
                continue
            if any(segment_hits((x0, candidate), (x1, candidate), b) for b in boxes):
                continue
            if any(abs(candidate - lane) < LANE_APART and a < x1 and x0 < b for lane, a, b in used):
                continue
            used.append((candidate, x0, x1))
            return candidate
    raise ValueError("no free horizontal lane for a wire")


def _reroute(reroutes, pos, parent, links):
    reroute = Reroute(len(reroutes) + 1, pos=[float(pos[0]), float(pos[1])], link_ids=sorted({l.id for l in links}),
                      parent_id=UNSET if parent is None else parent)
    reroutes.append(reroute)
    return reroute.id


