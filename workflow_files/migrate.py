"""Turn a workflow made with cubiq's PuLID_ComfyUI into the same graph with this pack's nodes.

cubiq's apply nodes encode the face photo at every run; here a face is encoded once by Encode Face and applied
by Apply, and EVA-CLIP and InsightFace come from one face-encoder loader (cubiq.py holds both packs' tables).
So each cubiq node keeps its id and place under its new type (the InsightFace loader becomes the face
encoder loader, the EVA-CLIP loader goes), and one Encode Face is added next to the apply nodes for
each distinct (face image, noise): two applies on the same photo share it. Every other node, link and
value is left as it was. A UI workflow is then re-laid in columns, each node right of its inputs, with wires
through reroutes that pass under no node (layout.py); its groups, whose nodes moved, are removed and
named in the notes. keep_layout=True keeps every position and group and puts the added nodes on free canvas.
Both of ComfyUI's formats are read: a UI workflow (nodes + links, edited as graph.py's types, links
addressed by input and output name) and an
API prompt ({id: {class_type, inputs}}).

What has no exact equivalent is listed in the returned notes (and, in a UI workflow, a Note node).
"""
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

from pulid.catalog import EVA_CLIP, INSIGHTFACE_MODEL
from pulid.errors import PulidError

from .cubiq import ALWAYS, CUBIQ_INPUT, CUBIQ_NODES, CUBIQ_WIDGETS, ENCODE_DEFAULTS, OUR_TYPE, OURS, TYPES, apply_values
from .geometry import node_box, pair
from .graph import Input, Node, Output, Workflow
from .layout import arrange, auto_columns
from .records import UNSET

ENCODE_SIZE = [300, 150]
NOTE_SIZE = [420, 220]


@dataclass
class Migration:
    """The migrated workflow and what could not be carried over exactly."""

    workflow: dict
    notes: list = field(default_factory=list)
    format: str = "ui"


def migrate(workflow, keep_layout=False):
    """`workflow` (a parsed UI workflow or API prompt using cubiq's nodes) -> Migration; never changes it."""
    if _is_ui(workflow):
        return _UIMigration(Workflow.from_dict(workflow), keep_layout).run()
    if _is_api(workflow):
        return _migrate_api(copy.deepcopy(workflow))
    raise PulidError("This JSON is not a ComfyUI workflow: neither a UI workflow (\"nodes\" and \"links\") nor an "
                     "API-format prompt ({id: {\"class_type\", \"inputs\"}}).")


def migrate_file(source, target=None, keep_layout=False):
    """Read `source`, write the migrated workflow to `target`; returns the Migration. Refuses to write
    over `source` unless `target` names it."""
    source = Path(source)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise PulidError(f"Cannot read {source}: {exc}.") from None
    except json.JSONDecodeError as exc:
        raise PulidError(f"{source} is not JSON ({exc}); give a workflow saved from ComfyUI.") from None
    result = migrate(data, keep_layout)
    if target is not None:
        Path(target).write_text(json.dumps(result.workflow, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return result


def _is_ui(data):
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and isinstance(data.get("links"), list)


def _is_api(data):
    return (isinstance(data, dict) and data and all(isinstance(v, dict) and "class_type" in v and "inputs" in v
                                                    for v in data.values()))


def _no_cubiq(count):
    if not count:
        raise PulidError("This workflow uses no node of cubiq's PuLID_ComfyUI (" + ", ".join(CUBIQ_NODES) +
                         "): there is nothing to migrate.")


# ---------------------------------------------------------------- API prompts


def _migrate_api(prompt):
    cubiq = {k: v for k, v in prompt.items() if v["class_type"] in CUBIQ_NODES}
    _no_cubiq(len(cubiq))
    notes = list(ALWAYS)
    next_id = max((int(k) for k in prompt if str(k).isdigit()), default=0) + 1
    encodes = {}
    for key, node in cubiq.items():
        kind, inputs = node["class_type"], node["inputs"]
        if kind == "PulidEvaClipLoader":
            del prompt[key]
        elif kind == "PulidInsightFaceLoader":
            node.update(class_type=OUR_TYPE[kind], inputs={"eva_clip_file": EVA_CLIP.filename,
                                                           "insightface_model": INSIGHTFACE_MODEL,
                                                           "provider": inputs.get("provider", "CPU")})
        elif kind == "PulidModelLoader":
            node["class_type"] = OUR_TYPE[kind]
        else:
            values, noise = apply_values(kind, inputs, notes, f"node {key} ({kind})")
            source = (json.dumps(inputs.get("image")), noise)
            if source not in encodes:
                encodes[source] = str(next_id)
                next_id += 1
                prompt[encodes[source]] = {"class_type": "PuLIDSDXLEncodeFace", "inputs": {
                    "pulid_model": inputs.get("pulid"), "face_encoder": inputs.get("face_analysis"),
                    "image": inputs.get("image"), **ENCODE_DEFAULTS, "noise": noise},
                    "_meta": {"title": "Encode Face (PuLID SDXL)"}}
            new = {"model": inputs.get("model"), "pulid_model": inputs.get("pulid"),
                   "embeds": [encodes[source], OURS["PuLIDSDXLEncodeFace"].output_index("embeds")], **values}
            if "attn_mask" in inputs:
                new["attn_mask"] = inputs["attn_mask"]
            node.update(class_type=OUR_TYPE[kind], inputs=new)
        if key in prompt and "_meta" in prompt[key] and prompt[key]["_meta"].get("title") in (None, kind):
            prompt[key]["_meta"]["title"] = prompt[key]["class_type"]
    return Migration(prompt, notes, "api")


# ---------------------------------------------------------------- UI workflows


def _pos(node):
    return pair(node.pos, [0, 0])


def _size(node):
    return pair(node.size, [200, 100])


class _UIMigration:
    def __init__(self, workflow, keep_layout=False):
        self.wf = workflow
        self.keep_layout = keep_layout
        self.notes = list(ALWAYS)
        self.placed = []  # boxes of the nodes added so far

    def run(self):
        cubiq = [n for n in self.wf.nodes if n.type in CUBIQ_NODES]
        _no_cubiq(len(cubiq))
        encodes = {}
        for node in cubiq:
            if node.type == "PulidEvaClipLoader":
                self.wf.remove_node(node)
            elif node.type in ("PulidModelLoader", "PulidInsightFaceLoader"):
                self._convert_loader(node)
        for node in cubiq:
            if node.type in ("ApplyPulid", "ApplyPulidAdvanced"):
                self._convert_apply(node, encodes)
        for cubiq_type, ours in TYPES.items():
            for link in self.wf.links_of_type(cubiq_type):
                link.type = ours
        if not self.keep_layout and self.wf.groups:
            titles = ", ".join(repr(g.get("title", "")) for g in self.wf.groups)
            self.notes.append(f"The graph is re-laid in columns, so its groups ({titles}) no longer framed their "
                              "nodes and were removed; `migrate --keep-layout` keeps the layout and the groups.")
            self.wf.groups = []
        self._add_note()
        if not self.keep_layout:
            self._relayout()
        self.wf.last_node_id = self._last_node_id()
        self.wf.last_link_id = max((link.id for link in self.wf.links), default=0)
        return Migration(self.wf.to_dict(), self.notes, "ui")

    def _last_node_id(self):
        return max(node.id for node in self.wf.nodes)

    # -- nodes

    def _values(self, node):
        names = CUBIQ_WIDGETS.get(node.type, ())
        values = node.widgets_values or []
        if isinstance(values, dict):
            return dict(values)
        return dict(zip(names, values))

    def _rename(self, node, new_type, values):
        """`node` as our `new_type` with widgets `values` ({name: value}); cubiq's outputs become ours in their
        order (each of its nodes has one), keeping their links."""
        node.type = new_type
        if node.properties is UNSET:
            node.properties = {}
        node.properties["Node name for S&R"] = new_type
        ours = OURS[new_type]
        node.widgets_values = [values[name] for name in ours.widgets]
        old = node.outputs or []
        node.outputs = [self._output(name, kind, slot, old[slot] if slot < len(old) else None)
                        for slot, (name, kind) in enumerate(ours.outputs)]

    @staticmethod
    def _output(name, kind, slot, old):
        return Output(name=name, type=kind, links=list((old.links or []) if old else []), slot_index=slot)

    def _convert_loader(self, node):
        values = self._values(node)
        if node.type == "PulidInsightFaceLoader":
            values = {"eva_clip_file": EVA_CLIP.filename, "insightface_model": INSIGHTFACE_MODEL,
                      "provider": values.get("provider", "CPU")}
        self._rename(node, OUR_TYPE[node.type], values)

    def _convert_apply(self, node, encodes):
        kind, where = node.type, f"node {node.id} ({node.type})"
        values, noise = apply_values(kind, self._values(node), self.notes, where)
        for entry in node.inputs or []:
            if entry.widget and entry.connected:
                self.notes.append(f"{where}: the widget input {entry.name!r} driven by a link was left unlinked; "
                                  f"set its value on the new node.")
                self.wf.disconnect(entry.link)
        links = {name: self.wf.link_into(node, name) for name in
                 ("image", "pulid", "face_analysis", "eva_clip", *CUBIQ_INPUT.values())}
        image_link = links["image"]
        source = (image_link.source if image_link else None, noise)
        encode = encodes.get(source)
        if encode is None:
            encode = encodes[source] = self._new_encode(node, noise)
            for name, ours in (("image", "image"), ("face_analysis", "face_encoder")):
                if links[name]:
                    self.wf.retarget(links[name], encode, ours)
            if links["pulid"]:
                self.wf.branch(links["pulid"], encode, "pulid_model")
        else:
            for name in ("image", "face_analysis"):
                if links[name]:
                    self.wf.disconnect(links[name].id)
        if links["eva_clip"]:
            self.wf.disconnect(links["eva_clip"].id)
        self._rename(node, OUR_TYPE[kind], values)
        node.inputs = []
        for name, type_ in OURS[node.type].inputs:
            link = links[CUBIQ_INPUT[name]] if name in CUBIQ_INPUT else None
            if link is None and name == "attn_mask":
                continue
            node.inputs.append(Input(name=name, type=type_, link=None))
            if name == "embeds":
                self.wf.connect(encode, "embeds", node, "embeds")
            elif link is not None:
                self.wf.retarget(link, node, name)

    def _new_encode(self, apply, noise):
        width, height = ENCODE_SIZE
        x, y = _pos(apply)
        ours = OURS["PuLIDSDXLEncodeFace"]
        values = {**ENCODE_DEFAULTS, "noise": noise}
        node = Node(self._last_node_id() + 1, "PuLIDSDXLEncodeFace",
                    pos=self._free_spot(x - width - 40, y, width, height), size=[width, height], flags={},
                    order=apply.get("order", 0), mode=0,
                    inputs=[Input(name=n, type=t, link=None) for n, t in ours.inputs],
                    outputs=[self._output(n, t, s, None) for s, (n, t) in enumerate(ours.outputs)],
                    properties={"Node name for S&R": "PuLIDSDXLEncodeFace"},
                    widgets_values=[values[name] for name in ours.widgets])
        self.wf.nodes.append(node)
        return node

    def _add_note(self):
        xs, ys = zip(*(_pos(n) for n in self.wf.nodes))
        text = "Migrated from cubiq's PuLID_ComfyUI by `python -m pulid_cli migrate`:\n" + "\n".join(
            f"- {note}" for note in self.notes)
        self.wf.nodes.append(Node(self._last_node_id() + 1, "Note",
                                  pos=self._free_spot(min(xs), min(ys) - NOTE_SIZE[1] - 60, *NOTE_SIZE),
                                  size=list(NOTE_SIZE), flags={}, order=0, mode=0, inputs=[], outputs=[],
                                  properties={}, widgets_values=[text], title="PuLID migration notes"))

    def _relayout(self):
        sizes = {n.id: _size(n) for n in self.wf.nodes}
        arrange(self.wf, auto_columns(self.wf, sizes), sizes)

    def _free_spot(self, x, y, width, height):
        """The first place at or below (x, y) where a width x height box overlaps no node."""
        boxes = [self._box(n) for n in self.wf.nodes] + self.placed
        while any(x < bx + bw + 20 and bx < x + width + 20 and y < by + bh + 20 and by < y + height + 20
                  for bx, by, bw, bh in boxes):
            y += 40
        self.placed.append((x, y, width, height))
        return [x, y]

    def _box(self, node):
        box = node_box(node)
        return box.x, box.y, box.width, box.height
