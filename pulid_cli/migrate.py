"""Turn a workflow made with cubiq's PuLID_ComfyUI into the same graph with this pack's nodes.

cubiq's pack has five nodes: PulidModelLoader, PulidEvaClipLoader, PulidInsightFaceLoader, ApplyPulid
and ApplyPulidAdvanced, the apply nodes encoding the face photo at every run. Here a face is encoded
once by Encode Face and applied by Apply; EVA-CLIP and InsightFace come from one face-encoder loader.
So each cubiq node keeps its id and place under its new type (the InsightFace loader becomes the face
encoder loader, the EVA-CLIP loader goes), and one Encode Face is added next to the apply nodes for
each distinct (face image, noise): two applies on the same photo share it. Every other node, link and
value is left as it was. A UI workflow is then re-laid in columns, each node right of its inputs, with wires
through reroutes that pass under no node (pulid_cli.layout); its groups, whose nodes moved, are removed and
named in the notes. keep_layout=True keeps every position and group and puts the added nodes on free canvas.
Both of ComfyUI's formats are read: a UI workflow (nodes + links) and an API prompt ({id: {class_type,
inputs}}).

What has no exact equivalent is listed in the returned notes (and, in a UI workflow, a Note node).
"""
import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

from pulid.catalog import EVA_CLIP, INSIGHTFACE_MODEL
from pulid.errors import PulidError

from .layout import arrange, auto_columns, node_box, pair

CUBIQ_NODES = ("PulidModelLoader", "PulidEvaClipLoader", "PulidInsightFaceLoader", "ApplyPulid", "ApplyPulidAdvanced")
TYPES = {"PULID": "PULID_SDXL_MODEL", "FACEANALYSIS": "PULID_SDXL_FACE_ENCODER"}
PROJECTION = {"ortho_v2": "v2", "ortho": "v1", "none": "off"}
ENCODE_DEFAULTS = {"face": "largest", "multi_image": "auto", "skip_faceless": False}

# cubiq's widgets in their order, and ours.
CUBIQ_WIDGETS = {"ApplyPulid": ("method", "weight", "start_at", "end_at"),
                 "ApplyPulidAdvanced": ("weight", "projection", "fidelity", "noise", "start_at", "end_at"),
                 "PulidInsightFaceLoader": ("provider",), "PulidModelLoader": ("pulid_file",)}
OUR_WIDGETS = {"PuLIDSDXLApply": ("weight", "method", "start_at", "end_at"),
               "PuLIDSDXLApplyAdvanced": ("weight", "start_at", "end_at", "num_zero", "ortho"),
               "PuLIDSDXLEncodeFace": ("face", "multi_image", "noise", "skip_faceless"),
               "PuLIDSDXLFaceEncoderLoader": ("eva_clip_file", "insightface_model", "provider"),
               "PuLIDSDXLModelLoader": ("pulid_file",)}
OUR_TYPE = {"PulidModelLoader": "PuLIDSDXLModelLoader", "PulidInsightFaceLoader": "PuLIDSDXLFaceEncoderLoader",
            "ApplyPulid": "PuLIDSDXLApply", "ApplyPulidAdvanced": "PuLIDSDXLApplyAdvanced"}
OUR_INPUTS = {"PuLIDSDXLApply": (("model", "MODEL"), ("pulid_model", "PULID_SDXL_MODEL"),
                                 ("embeds", "PULID_SDXL_EMBEDS"), ("attn_mask", "MASK")),
              "PuLIDSDXLEncodeFace": (("pulid_model", "PULID_SDXL_MODEL"),
                                      ("face_encoder", "PULID_SDXL_FACE_ENCODER"), ("image", "IMAGE"))}
OUR_INPUTS["PuLIDSDXLApplyAdvanced"] = OUR_INPUTS["PuLIDSDXLApply"]
OUR_OUTPUTS = {"PuLIDSDXLModelLoader": (("pulid_model", "PULID_SDXL_MODEL"),),
               "PuLIDSDXLFaceEncoderLoader": (("face_encoder", "PULID_SDXL_FACE_ENCODER"),),
               "PuLIDSDXLApply": (("model", "MODEL"),), "PuLIDSDXLApplyAdvanced": (("model", "MODEL"),),
               "PuLIDSDXLEncodeFace": (("embeds", "PULID_SDXL_EMBEDS"), ("face_preview", "IMAGE"))}
ENCODE_SIZE = [300, 150]
NOTE_SIZE = [420, 220]

ALWAYS = ("cubiq's ortho_v2 (method fidelity, projection ortho_v2) differs from the official PuLID math this "
          "pack uses, so the same settings can give a slightly different likeness.",)


@dataclass
class Migration:
    """The migrated workflow and what could not be carried over exactly."""

    workflow: dict
    notes: list = field(default_factory=list)
    format: str = "ui"


def migrate(workflow, keep_layout=False):
    """`workflow` (a parsed UI workflow or API prompt using cubiq's nodes) -> Migration; never changes it."""
    if _is_ui(workflow):
        return _UIMigration(copy.deepcopy(workflow), keep_layout).run()
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


def _noise(value, notes, where):
    if value < 0 or value > 1:
        notes.append(f"{where}: noise {value} is outside 0..1 here; Encode Face got {min(abs(value), 1.0)}.")
        return min(abs(value), 1.0)
    if value:
        notes.append(f"{where}: noise {value} moved to Encode Face; cubiq also filled the zero tokens with noise, "
                     f"this pack keeps them zero (the official form).")
    return value


def _apply_values(kind, values, notes, where):
    """{our widget: value} and the Encode Face noise from a cubiq apply node's {widget: value}."""
    ours = {"weight": values.get("weight", 1.0), "start_at": values.get("start_at", 0.0),
            "end_at": values.get("end_at", 1.0)}
    if kind == "ApplyPulid":
        ours["method"] = values.get("method", "fidelity")
        return ours, 0.0
    projection = values.get("projection", "ortho_v2")
    ours["ortho"] = PROJECTION.get(projection, "v2")
    if projection not in PROJECTION:
        notes.append(f"{where}: projection {projection!r} is unknown; ortho set to v2.")
    ours["num_zero"] = int(values.get("fidelity", 8))
    return ours, _noise(float(values.get("noise", 0.0)), notes, where)


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
            values, noise = _apply_values(kind, inputs, notes, f"node {key} ({kind})")
            source = (json.dumps(inputs.get("image")), noise)
            if source not in encodes:
                encodes[source] = str(next_id)
                next_id += 1
                prompt[encodes[source]] = {"class_type": "PuLIDSDXLEncodeFace", "inputs": {
                    "pulid_model": inputs.get("pulid"), "face_encoder": inputs.get("face_analysis"),
                    "image": inputs.get("image"), **ENCODE_DEFAULTS, "noise": noise},
                    "_meta": {"title": "Encode Face (PuLID SDXL)"}}
            new = {"model": inputs.get("model"), "pulid_model": inputs.get("pulid"),
                   "embeds": [encodes[source], 0], **values}
            if "attn_mask" in inputs:
                new["attn_mask"] = inputs["attn_mask"]
            node.update(class_type=OUR_TYPE[kind], inputs=new)
        if key in prompt and "_meta" in prompt[key] and prompt[key]["_meta"].get("title") in (None, kind):
            prompt[key]["_meta"]["title"] = prompt[key]["class_type"]
    return Migration(prompt, notes, "api")


# ---------------------------------------------------------------- UI workflows


def _pos(node):
    return pair(node.get("pos"), [0, 0])


def _size(node):
    return pair(node.get("size"), [200, 100])


class _UIMigration:
    def __init__(self, workflow, keep_layout=False):
        self.wf = workflow
        self.keep_layout = keep_layout
        self.nodes = {n["id"]: n for n in workflow["nodes"]}
        self.links = {link[0]: link for link in workflow["links"]}
        self.notes = list(ALWAYS)
        self.placed = []  # boxes of the nodes added so far

    def run(self):
        cubiq = [n for n in self.wf["nodes"] if n["type"] in CUBIQ_NODES]
        _no_cubiq(len(cubiq))
        encodes = {}
        for node in cubiq:
            kind = node["type"]
            if kind == "PulidEvaClipLoader":
                self._remove_node(node)
            elif kind in ("PulidModelLoader", "PulidInsightFaceLoader"):
                self._convert_loader(node)
        for node in cubiq:
            if node["type"] in ("ApplyPulid", "ApplyPulidAdvanced"):
                self._convert_apply(node, encodes)
        for link in self.wf["links"]:
            link[5] = TYPES.get(link[5], link[5])
        if not self.keep_layout and self.wf.get("groups"):
            titles = ", ".join(repr(g.get("title", "")) for g in self.wf["groups"])
            self.notes.append(f"The graph is re-laid in columns, so its groups ({titles}) no longer framed their "
                              "nodes and were removed; `migrate --keep-layout` keeps the layout and the groups.")
            self.wf["groups"] = []
        self._add_note()
        if not self.keep_layout:
            self._relayout()
        self.wf["last_node_id"] = max(self.nodes)
        self.wf["last_link_id"] = max(self.links, default=0)
        return Migration(self.wf, self.notes, "ui")

    # -- nodes

    def _values(self, node):
        names = CUBIQ_WIDGETS.get(node["type"], ())
        values = node.get("widgets_values") or []
        if isinstance(values, dict):
            return dict(values)
        return dict(zip(names, values))

    def _rename(self, node, new_type, values):
        node["type"] = new_type
        node.setdefault("properties", {})["Node name for S&R"] = new_type
        names = OUR_WIDGETS[new_type]
        node["widgets_values"] = [values[name] for name in names]
        node["outputs"] = [self._output(name, kind, slot, node["outputs"][slot] if slot < len(node["outputs"])
                                        else None) for slot, (name, kind) in enumerate(OUR_OUTPUTS[new_type])]

    @staticmethod
    def _output(name, kind, slot, old):
        links = (old or {}).get("links") or []
        return {"name": name, "type": kind, "links": list(links), "slot_index": slot}

    def _convert_loader(self, node):
        values = self._values(node)
        if node["type"] == "PulidInsightFaceLoader":
            values = {"eva_clip_file": EVA_CLIP.filename, "insightface_model": INSIGHTFACE_MODEL,
                      "provider": values.get("provider", "CPU")}
        self._rename(node, OUR_TYPE[node["type"]], values)

    def _convert_apply(self, node, encodes):
        kind, where = node["type"], f"node {node['id']} ({node['type']})"
        values, noise = _apply_values(kind, self._values(node), self.notes, where)
        inputs = {i["name"]: i for i in node.get("inputs", [])}
        for name, entry in inputs.items():
            if entry.get("widget") and entry.get("link") is not None:
                self.notes.append(f"{where}: the widget input {name!r} driven by a link was left unlinked; "
                                  f"set its value on the new node.")
                self._drop_link(entry["link"])
        image_link = self._link_of(inputs, "image")
        source = (tuple(image_link[1:3]) if image_link else None, noise)
        encode = encodes.get(source)
        pulid_link, face_link = self._link_of(inputs, "pulid"), self._link_of(inputs, "face_analysis")
        if encode is None:
            encode = encodes[source] = self._new_encode(node, noise)
            self._connect(image_link, encode, 2)
            self._connect(face_link, encode, 1)
            if pulid_link:
                self._add_link(pulid_link[1], pulid_link[2], encode["id"], 0, "PULID_SDXL_MODEL")
        else:
            for link in (image_link, face_link):
                if link:
                    self._drop_link(link[0])
        eva = self._link_of(inputs, "eva_clip")
        if eva:
            self._drop_link(eva[0])
        self._rename(node, OUR_TYPE[kind], values)
        node["inputs"] = []
        for slot, (name, type_) in enumerate(OUR_INPUTS[node["type"]]):
            old = {"model": "model", "pulid_model": "pulid", "attn_mask": "attn_mask"}.get(name)
            link = self._link_of(inputs, old) if old else None
            if name == "embeds":
                link = self.links[self._add_link(encode["id"], 0, node["id"], slot, "PULID_SDXL_EMBEDS")]
            elif link is not None:
                link[3], link[4] = node["id"], slot
            if link is None and name == "attn_mask":
                continue
            node["inputs"].append({"name": name, "type": type_, "link": link[0] if link else None})

    def _new_encode(self, apply, noise):
        node_id = max(self.nodes) + 1
        width, height = ENCODE_SIZE
        x, y = _pos(apply)
        pos = self._free_spot(x - width - 40, y, width, height)
        node = {"id": node_id, "type": "PuLIDSDXLEncodeFace", "pos": pos, "size": [width, height], "flags": {},
                "order": apply.get("order", 0), "mode": 0,
                "inputs": [{"name": n, "type": t, "link": None} for n, t in OUR_INPUTS["PuLIDSDXLEncodeFace"]],
                "outputs": [self._output(n, t, s, None) for s, (n, t) in enumerate(OUR_OUTPUTS["PuLIDSDXLEncodeFace"])],
                "properties": {"Node name for S&R": "PuLIDSDXLEncodeFace"},
                "widgets_values": [ENCODE_DEFAULTS["face"], ENCODE_DEFAULTS["multi_image"], noise,
                                   ENCODE_DEFAULTS["skip_faceless"]]}
        self.wf["nodes"].append(node)
        self.nodes[node_id] = node
        return node

    def _add_note(self):
        node_id = max(self.nodes) + 1
        xs, ys = zip(*(_pos(n) for n in self.wf["nodes"]))
        pos = self._free_spot(min(xs), min(ys) - NOTE_SIZE[1] - 60, *NOTE_SIZE)
        text = "Migrated from cubiq's PuLID_ComfyUI by `python -m pulid_cli migrate`:\n" + "\n".join(
            f"- {note}" for note in self.notes)
        note = {"id": node_id, "type": "Note", "pos": pos, "size": list(NOTE_SIZE), "flags": {}, "order": 0,
                "mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": [text],
                "title": "PuLID migration notes"}
        self.wf["nodes"].append(note)
        self.nodes[node_id] = note

    def _relayout(self):
        sizes = {n["id"]: _size(n) for n in self.wf["nodes"]}
        arrange(self.wf, auto_columns(self.wf, sizes), sizes)

    def _free_spot(self, x, y, width, height):
        """The first place at or below (x, y) where a width x height box overlaps no node."""
        boxes = [self._box(n) for n in self.wf["nodes"]] + self.placed
        while any(x < bx + bw + 20 and bx < x + width + 20 and y < by + bh + 20 and by < y + height + 20
                  for bx, by, bw, bh in boxes):
            y += 40
        self.placed.append((x, y, width, height))
        return [x, y]

    def _box(self, node):
        box = node_box(node)
        return box.x, box.y, box.width, box.height

    def _remove_node(self, node):
        for entry in node.get("inputs", []):
            if entry.get("link") is not None:
                self._drop_link(entry["link"])
        for out in node.get("outputs", []):
            for link_id in list(out.get("links") or []):
                self._drop_link(link_id)
        self.wf["nodes"].remove(node)
        del self.nodes[node["id"]]

    # -- links

    def _link_of(self, inputs, name):
        entry = inputs.get(name)
        if entry is None or entry.get("link") is None:
            return None
        return self.links.get(entry["link"])

    def _connect(self, link, target, slot):
        if link is None:
            return
        link[3], link[4] = target["id"], slot
        target["inputs"][slot]["link"] = link[0]

    def _add_link(self, origin, origin_slot, target, slot, kind):
        link_id = max(self.links, default=0) + 1
        link = [link_id, origin, origin_slot, target, slot, kind]
        self.wf["links"].append(link)
        self.links[link_id] = link
        source = self.nodes[origin]["outputs"][origin_slot]
        source["links"] = list(source.get("links") or []) + [link_id]
        target_node = self.nodes[target]
        if slot < len(target_node.get("inputs", [])) and target_node["type"] == "PuLIDSDXLEncodeFace":
            target_node["inputs"][slot]["link"] = link_id
        return link_id

    def _drop_link(self, link_id):
        link = self.links.pop(link_id, None)
        if link is None:
            return
        self.wf["links"].remove(link)
        origin = self.nodes.get(link[1])
        if origin is not None and link[2] < len(origin.get("outputs", [])):
            out = origin["outputs"][link[2]]
            out["links"] = [i for i in (out.get("links") or []) if i != link_id]
