"""Lay out the shipped workflows (workflows/*.json) so an artist reads each at a glance.

    .venv/bin/python tools/relayout.py          # rewrites the node positions, groups, notes and reroutes

Each workflow is given here as columns of node ids, left to right (loaders | identity | prompt | apply and
sample | decode and save), each node with the y of its top. Column x follows from the widest node in it.
A link to the next column is a straight wire through the gap between the two; a longer one runs through
reroutes: along the gap right of its node, across a free horizontal lane, down the gap left of its target.
Wires from one output share their reroutes. Groups frame the roles; one Note says what to change first.
tests/test_workflow_layout.py checks the result from the JSON (no wire through a node, no overlap, one
1600x1000 screen at zoom 1), so a change here that breaks it fails the tests, not an artist's eye.
"""
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pulid_cli import layout  # noqa: E402

log = logging.getLogger("relayout")

LEFT = 20
LANE_TOP = 12  # the top lane, above every group: the plans' y values are moved down by BAND to make room
BAND = 30
GAP = 36  # between columns: the channel the routed wires run down
LANE_STEP = 10
CHANNEL_STEP = 5  # between wires running down one gap
# Body sizes (title bar excluded): the frontend's own minimum (computeSize, 1.49) where that reads well,
# wider text boxes and room for the pictures a run shows.
SIZES = {
    "CheckpointLoaderSimple": (262, 98), "PuLIDSDXLModelLoader": (262, 58), "PuLIDSDXLFaceEncoderLoader": (262, 106),
    "PuLIDSDXLLoadEmbeds": (262, 58), "LoadImage": (224, 326), "PuLIDSDXLEncodeFace": (220, 170),
    "PreviewImage": (220, 100), "PuLIDSDXLApply": (220, 190), "PuLIDSDXLApplyAdvanced": (250, 214),
    "CLIPTextEncode": (220, 100), "EmptyLatentImage": (220, 106), "KSampler": (220, 262), "VAEDecode": (150, 46),
    "SaveImage": (220, 290), "PuLIDSDXLSaveEmbeds": (252, 58), "LatentBatch": (150, 46),
    "PuLIDSDXLFaceSimilarity": (230, 98), "PreviewAny": (220, 160), "SolidMask": (210, 106),
    "MaskComposite": (210, 126), "InvertMask": (150, 26), "Note": (220, 220),
}


@dataclass
class Plan:
    columns: list  # [[(node id, y), ...], ...] left to right
    groups: list  # [(title, [node ids]), ...]
    sizes: dict = field(default_factory=dict)  # node id -> (w, h) where the table above is not right


def _single_identity():
    """pulid_basic, pulid_lightning and pulid_advanced: one face, one Apply (#7)."""
    return Plan(
        columns=[[(1, 70), (2, 230), (3, 350), (4, 580)],
                 [(5, 580)],
                 [(10, 70), (11, 225), (12, 375), (7, 580), (6, 840)],
                 [(13, 70), ("note", 470)],
                 [(14, 70)],
                 [(15, 70)]],
        groups=[("Models", [1, 2, 3]), ("Identity (PuLID)", [4, 5, 6, 7]), ("Prompt", [10, 11, 12]),
                ("Sample & save", [13, 14, 15])],
        sizes={6: (230, 100)})


KNOBS = ("The three knobs:\n"
         "- weight (Apply): lower it (0.6 to 0.8) when the prompt's style is lost, raise it (up to 1.2) for a "
         "closer likeness.\n"
         "- method: fidelity for likeness, style when the prompt matters more.\n"
         "- the photo (Load Image): one sharp, front-lit face; a batch of photos of the same person averages out.")
NOTES = {
    "pulid_lightning": KNOBS + "\nLightning: keep the sampler's steps and cfg as the model card says.",
    "pulid_advanced": KNOBS.replace("- method: fidelity for likeness, style when the prompt matters more.",
                                    "- ortho and num_zero (Apply Advanced) replace the method presets: for v1.1 "
                                    "fidelity is ortho v2 + 20 zero tokens, style v1 + 40."),
    "pulid_reuse_embeds": KNOBS.replace("- the photo (Load Image): one sharp, front-lit face; a batch of photos of "
                                        "the same person averages out.",
                                        "- the embeddings file: saved once by pulid_save_embeds, no face models "
                                        "needed here."),
    "pulid_save_embeds": "Encode a face once, reuse it everywhere:\n- the photo: one sharp, front-lit face (or a "
                         "batch of one person).\n- face: which face in a group photo.\n- filename_prefix: the name "
                         "Load PuLID Embeddings lists (models/pulid_sdxl_embeds).",
    "pulid_two_identities": "The three knobs:\n- weight (each Apply): lower it (0.6 to 0.8) when the prompt's "
                            "style is lost.\n- the masks (Solid Mask, Combine Masks): white = where the first face "
                            "goes; the second Apply gets the inverse.\n- the photos (Load Image): one sharp, "
                            "front-lit face each.",
    "pulid_similarity_sweep": "Which weight keeps the likeness? Three Apply nodes (weights 0.4, 0.8, 1.2), same "
                              "seed; Face Similarity scores each result against the photo (1 = same face).\n"
                              "- change the weights in the Apply titles and widgets.\n- method: fidelity or style.\n"
                              "- the photo: one sharp, front-lit face.",
}


def plans():
    single = _single_identity()
    return {
        "pulid_basic": single,
        "pulid_lightning": single,
        "pulid_advanced": single,
        "pulid_reuse_embeds": Plan(
            columns=[[(1, 70), (2, 230), (3, 580)],
                     [(10, 70), (11, 225), (12, 375), (7, 580)],
                     [(13, 70), ("note", 470)],
                     [(14, 70)],
                     [(15, 70)]],
            groups=[("Models", [1, 2]), ("Identity (PuLID)", [3, 7]), ("Prompt", [10, 11, 12]),
                    ("Sample & save", [13, 14, 15])],
            ),
        "pulid_save_embeds": Plan(
            columns=[[(2, 70), (3, 190), (4, 420)],
                     [(5, 420), ("note", 70)],
                     [(7, 420), (6, 530)]],
            groups=[("Models", [2, 3]), ("Identity (PuLID)", [4, 5, 6, 7])],
            ),
        "pulid_two_identities": Plan(
            columns=[[(1, 70), (2, 230), (3, 350), (8, 560), (9, 720)],
                     [(4, 70), (5, 440), (20, 810)],
                     [(6, 70), (7, 440), (21, 810)],
                     [(22, 70), (23, 440), (10, 710), (11, 850)],
                     [(13, 70), (12, 420), ("note", 600)],
                     [(14, 70), (15, 190)]],
            groups=[("Models", [1, 2, 3]), ("Masks", [8, 9]), ("Identity (PuLID)", [4, 5, 6, 7, 20, 21]),
                    ("Apply (PuLID)", [22, 23]), ("Prompt", [10, 11]), ("Sample & save", [12, 13, 14, 15])],
            ),
        "pulid_similarity_sweep": Plan(
            columns=[[(1, 70), (2, 230), (3, 350), (4, 580)],
                     [(10, 70), (11, 225), (12, 375), (5, 580)],
                     [(6, 70), (7, 330), (8, 590)],
                     [(13, 70), (14, 375), (15, 680)],
                     [(16, 70), (17, 160), (18, 250), (19, 340)],
                     [(20, 70), (21, 400), ("note", 620)]],
            groups=[("Models", [1, 2, 3]), ("Prompt", [10, 11, 12]), ("Identity (PuLID)", [4, 5]),
                    ("Apply (PuLID)", [6, 7, 8]),
                    ("Sample, score & save", [13, 14, 15, 16, 17, 18, 19, 20, 21])]),
    }


def arrange(workflow, plan, note_text):
    """Place, group and route `workflow` by `plan`; a gap that more wires run down than it holds is widened."""
    workflow["nodes"] = [n for n in workflow["nodes"] if n["type"] not in ("Note", "MarkdownNote")]
    nodes = {n["id"]: n for n in workflow["nodes"]}
    note = {"id": max(nodes) + 1, "type": "Note", "pos": [0, 0], "size": [0, 0], "flags": {}, "order": 0,
            "mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": [note_text],
            "title": "Start here"}
    workflow["nodes"].append(note)
    workflow["last_node_id"] = note["id"]  # the frontend numbers new nodes from it
    nodes[note["id"]] = note
    columns = [[(note["id"] if i == "note" else i, y) for i, y in column] for column in plan.columns]
    gaps = [GAP] * len(plan.columns)
    for _ in range(4):
        column_of, spans, x = {}, [], LEFT
        for index, column in enumerate(columns):
            width = max(_size(nodes[i], plan, i)[0] for i, _ in column)  # one width a column
            for node_id, y in column:
                nodes[node_id]["pos"] = [x, y + BAND]
                nodes[node_id]["size"] = [width, _size(nodes[node_id], plan, node_id)[1]]
                column_of[node_id] = index
            spans.append((x, x + width))
            x += width + gaps[index]
        workflow["groups"] = [_group(title, [nodes[i] for i in ids]) for title, ids in plan.groups]
        use = _route(workflow, nodes, column_of, spans)
        needed = [max(gaps[c], 8 + CHANNEL_STEP * use.get(c, 0) + 4) for c in range(len(gaps))]
        if needed == gaps:
            break
        gaps = needed
    workflow["extra"]["ds"] = {"scale": 1.0, "offset": [0, 0]}
    return workflow


def _size(node, plan, node_id):
    return plan.sizes.get(node_id) or SIZES[node["type"]]  # the Note has no id in the plan: it is never there


def _group(title, members):
    boxes = [layout.node_box(n) for n in members]
    x0, y0 = min(b.x for b in boxes) - 10, min(b.y for b in boxes) - layout.GROUP_TITLE
    x1, y1 = max(b.right for b in boxes) + 10, max(b.bottom for b in boxes) + 10
    return {"title": title, "bounding": [x0, y0, x1 - x0, y1 - y0], "color": "#3f789e", "font_size": 24,
            "flags": {}}


def _route(workflow, nodes, column_of, spans):
    """Reroutes for every wire that does not just cross to the next column. Wires from one output to columns
    further right share a lane; a wire to a node below its own in the same column (where the width of one
    screen left no other place) loops back through the gap between the two."""
    boxes = [layout.node_box(n).shrunk(-8) for n in workflow["nodes"]]
    # A lane along a group's title bar would hide the title: the bars are kept clear too.
    boxes += [layout.Box(g["bounding"][0], g["bounding"][1] - 4, g["bounding"][2], layout.GROUP_TITLE)
              for g in workflow["groups"]]
    reroutes, extensions, used_lanes = [], [], []
    channel_use = {}
    by_output, loops, steep = {}, [], []
    for link in workflow["links"]:
        link_id, source, slot, target, _, *_ = link
        if column_of[target] < column_of[source]:
            raise SystemExit(f"link {link_id}: #{target} is left of #{source}; move it a column on")
        if column_of[target] == column_of[source]:
            loops.append(link)
        elif column_of[target] > column_of[source] + 1:
            by_output.setdefault((source, slot), []).append(link)
        elif _blocked(link, nodes):
            steep.append(link)
    for (source, slot), group in by_output.items():
        start = layout.output_slot(nodes[source], slot)
        out_gap = _channel(spans, column_of[source], channel_use)
        targets = sorted(group, key=lambda l: column_of[l[3]])
        far = _channel(spans, column_of[targets[-1][3]] - 1, channel_use, peek=True)
        lane = _lane(start[1], out_gap, far, boxes, used_lanes)
        first = _reroute(reroutes, (out_gap, start[1]), None, group)
        parent = _reroute(reroutes, (out_gap, lane), first, group)
        by_column = {}
        for link in targets:
            by_column.setdefault(column_of[link[3]], []).append(link)
        for column, links_in in sorted(by_column.items()):
            in_gap = _channel(spans, column - 1, channel_use)
            parent = _reroute(reroutes, (in_gap, lane), parent,
                              [l for c, ls in by_column.items() if c >= column for l in ls])
            for link in links_in:
                end = layout.input_slot(nodes[link[3]], link[4])
                last = _reroute(reroutes, (in_gap, end[1]), parent, [link])
                extensions.append({"id": link[0], "parentId": last})
    for link in loops:
        source, target = nodes[link[1]], nodes[link[3]]
        start, end = layout.output_slot(source, link[2]), layout.input_slot(target, link[4])
        out_gap = _channel(spans, column_of[link[1]], channel_use)
        in_gap = _channel(spans, column_of[link[3]] - 1, channel_use)
        middle = (layout.node_box(source).bottom + layout.node_box(target).y) / 2
        lane = _lane(middle, in_gap, out_gap, boxes, used_lanes)
        parent = None
        for point in ((out_gap, start[1]), (out_gap, lane), (in_gap, lane), (in_gap, end[1])):
            parent = _reroute(reroutes, point, parent, [link])
        extensions.append({"id": link[0], "parentId": parent})
    for link in steep:  # to the next column, but too steep to clear its neighbours: down the gap between
        start, end = layout.output_slot(nodes[link[1]], link[2]), layout.input_slot(nodes[link[3]], link[4])
        gap = _channel(spans, column_of[link[1]], channel_use)
        parent = _reroute(reroutes, (gap, start[1]), None, [link])
        extensions.append({"id": link[0], "parentId": _reroute(reroutes, (gap, end[1]), parent, [link])})
    workflow["extra"]["reroutes"] = reroutes
    workflow["extra"]["linkExtensions"] = extensions
    for key in ("reroutes", "linkExtensions"):
        if not workflow["extra"][key]:
            del workflow["extra"][key]
    return channel_use


def _blocked(link, nodes):
    """Whether the straight wire of `link` runs through a node other than its two ends."""
    start, end = layout.output_slot(nodes[link[1]], link[2]), layout.input_slot(nodes[link[3]], link[4])
    return any(layout.segment_hits(start, end, layout.node_box(n).shrunk(4)) for i, n in nodes.items()
               if i not in (link[1], link[3]))


def _channel(spans, column, use, peek=False):
    """An x in the gap right of `column` (-1: left of the first), a new one for each wire group down it."""
    left = spans[column][1] if column >= 0 else LEFT - GAP
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
            if any(layout.segment_hits((x0, candidate), (x1, candidate), b) for b in boxes):
                continue
            if any(abs(candidate - lane) < 8 and a < x1 and x0 < b for lane, a, b in used):
                continue
            used.append((candidate, x0, x1))
            return candidate
    raise SystemExit("no free lane")


def _reroute(reroutes, pos, parent, links):
    reroute = {"id": len(reroutes) + 1, "pos": [float(pos[0]), float(pos[1])],
               "linkIds": sorted({l[0] for l in links})}
    if parent is not None:
        reroute["parentId"] = parent
    reroutes.append(reroute)
    return reroute["id"]


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, plan in plans().items():
        path = REPO / "workflows" / f"{name}.json"
        workflow = json.loads(path.read_text(encoding="utf-8"))
        arrange(workflow, plan, NOTES.get(name, KNOBS))
        path.write_text(json.dumps(workflow, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        box = layout.extent(workflow)
        log.info("%s: %dx%d, wires through nodes %s, overlaps %s", name, box.width, box.height,
                 layout.crossings(workflow), layout.overlaps(workflow))


if __name__ == "__main__":
    main()
