"""A UI-format ComfyUI workflow (the JSON the frontend saves, version 0.4) as named types.

The file stores a link as a bare list, [id, origin node, origin slot, target node, target slot, type], and
the reroutes a wire runs through inside "extra"; code that indexes those by position breaks silently the day
one position is misremembered. Here every part has a name, and the graph edits that keep both ends of a link
in step (connect, disconnect, retarget, remove a node) are written once, addressing inputs and outputs by
name: the slot numbers the file stores are worked out here and nowhere else.

Workflow.from_dict and to_dict round-trip a file exactly (records.Record), so a tool that edits one node
rewrites nothing else of the file.
"""
import copy
from dataclasses import dataclass

from .records import UNSET, Record


@dataclass
class Input(Record):
    name: str = UNSET
    type: str = UNSET
    link: int = UNSET  # the id of the link into it, None while unconnected
    widget: dict = UNSET  # present when the input belongs to a widget: drawn at it, not in the slot rows

    @property
    def connected(self):
        return self.link is not None and self.link is not UNSET

    @property
    def has_widget(self):
        return self.widget is not UNSET


@dataclass
class Output(Record):
    name: str = UNSET
    type: str = UNSET
    links: list = UNSET  # ids of the links out of it
    slot_index: int = UNSET


@dataclass
class Node(Record):
    id: int
    type: str
    pos: list = UNSET  # [x, y] of the body's top left corner (title bar above it), or {"0": x, "1": y}
    size: list = UNSET  # the body's [width, height], title bar excluded
    flags: dict = UNSET
    order: int = UNSET
    mode: int = UNSET
    inputs: list = UNSET
    outputs: list = UNSET
    properties: dict = UNSET
    widgets_values: list = UNSET  # by position in the node's widget order (a dict in some node packs)
    title: str = UNSET

    ITEMS = {"inputs": Input.from_dict, "outputs": Output.from_dict}

    def input(self, name):
        """The input called `name`, or None."""
        return next((entry for entry in self.inputs or [] if entry.name == name), None)


@dataclass
class Link:
    """One wire: output `origin_slot` of node `origin_id` into input `target_slot` of node `target_id`."""

    id: int
    origin_id: int
    origin_slot: int
    target_id: int
    target_slot: int
    type: str

    @classmethod
    def from_list(cls, values):
        if len(values) != 6:
            raise ValueError(f"a link of a version 0.4 workflow has 6 entries, not {values!r}")
        return cls(*values)

    def to_list(self):
        return [self.id, self.origin_id, self.origin_slot, self.target_id, self.target_slot, self.type]

    @property
    def source(self):
        """The output the wire leaves, as a key: links from one output have equal sources."""
        return self.origin_id, self.origin_slot


@dataclass
class Group(Record):
    title: str = UNSET
    bounding: list = UNSET  # [x, y, width, height], its title bar included
    color: str = UNSET
    font_size: int = UNSET
    flags: dict = UNSET


@dataclass
class Reroute(Record):
    """A dot a wire is drawn through (the frontend's native reroutes, in extra.reroutes)."""

    id: int
    pos: list = UNSET
    link_ids: list = UNSET  # the links through it: the frontend drops a reroute's other links
    parent_id: int = UNSET  # the reroute before it, towards the output

    NAMES = {"link_ids": "linkIds", "parent_id": "parentId"}


@dataclass
class LinkExtension(Record):
    """Which reroute a link reaches its input from (extra.linkExtensions)."""

    id: int
    parent_id: int = UNSET

    NAMES = {"parent_id": "parentId"}


@dataclass
class Workflow(Record):
    last_node_id: int = UNSET
    last_link_id: int = UNSET
    nodes: list = UNSET
    links: list = UNSET
    groups: list = UNSET
    config: dict = UNSET
    extra: dict = UNSET  # the frontend's: the saved view (ds), reroutes and linkExtensions as records
    version: float = UNSET

    ITEMS = {"nodes": Node.from_dict, "links": Link.from_list, "groups": Group.from_dict}
    EXTRA_ITEMS = {"reroutes": Reroute.from_dict, "linkExtensions": LinkExtension.from_dict}

    @classmethod
    def from_dict(cls, data):
        """The workflow in `data` (a parsed UI workflow), which is copied, never changed."""
        workflow = super().from_dict(copy.deepcopy(data))
        for key, read in cls.EXTRA_ITEMS.items():
            if isinstance(workflow.extra, dict) and isinstance(workflow.extra.get(key), list):
                workflow.extra[key] = [read(item) for item in workflow.extra[key]]
        return workflow

    # -- lookups

    def node(self, node_id):
        """The node with id `node_id`, or None."""
        return next((node for node in self.nodes or [] if node.id == node_id), None)

    def link(self, link_id):
        """The link with id `link_id`, or None."""
        return next((link for link in self.links or [] if link.id == link_id), None)

    def link_into(self, node, name):
        """The link into input `name` of `node`, or None while it is unconnected (or `node` has no such input)."""
        entry = node.input(name)
        return self.link(entry.link) if entry is not None and entry.connected else None

    def links_into(self, node_id):
        return [link for link in self.links or [] if link.target_id == node_id]

    def links_from(self, node_id, slot=None):
        return [link for link in self.links or [] if link.origin_id == node_id and slot in (None, link.origin_slot)]

    def links_of_type(self, kind):
        return [link for link in self.links or [] if link.type == kind]

    @property
    def reroutes(self):
        return (self.extra or {}).get("reroutes") or []

    @reroutes.setter
    def reroutes(self, reroutes):
        self._set_extra("reroutes", reroutes)

    @property
    def link_extensions(self):
        return (self.extra or {}).get("linkExtensions") or []

    @link_extensions.setter
    def link_extensions(self, extensions):
        self._set_extra("linkExtensions", extensions)

    @property
    def view(self):
        """Where the canvas opens: {"scale", "offset"} (extra.ds)."""
        return (self.extra or {}).get("ds")

    @view.setter
    def view(self, view):
        self._set_extra("ds", view)

    def reroute_chain(self, link_id):
        """The reroutes link `link_id` runs through, from its output to its input: its link extension names
        the reroute next to the input, each reroute the one before it."""
        reroutes = {r.id: r for r in self.reroutes}
        parent = next((e.parent_id for e in self.link_extensions if e.id == link_id), UNSET)
        chain = []
        while parent is not UNSET and parent is not None:
            chain.insert(0, reroutes[parent])
            parent = reroutes[parent].parent_id
        return chain

    # -- edits that keep both ends of a link in step

    def connect(self, origin, output, target, input_name):
        """A new link (id one above the highest) from the output called `output` of node `origin` into input
        `input_name` of node `target`, typed as that input; returns it."""
        return self._link(origin, _slot(origin, origin.outputs, output, "output"), target, input_name)

    def branch(self, link, target, input_name):
        """A new link from the output `link` leaves (a node may have two outputs of one name, this is the one)
        into input `input_name` of node `target`, typed as that input; returns it."""
        return self._link(self.node(link.origin_id), link.origin_slot, target, input_name)

    def retarget(self, link, node, input_name):
        """Point `link` at input `input_name` of `node` instead of the input it ran into."""
        self._unplug(link)
        slot = _slot(node, node.inputs, input_name, "input")
        link.target_id, link.target_slot = node.id, slot
        node.inputs[slot].link = link.id

    def disconnect(self, link_id):
        """Remove link `link_id` (none: nothing) from the links and from both its ends."""
        link = self.link(link_id)
        if link is None:
            return
        self.links.remove(link)
        origin = self.node(link.origin_id)
        if origin is not None and link.origin_slot < len(origin.outputs or []):
            output = origin.outputs[link.origin_slot]
            output.links = [i for i in output.links or [] if i != link_id]
        self._unplug(link)

    def _unplug(self, link):
        """Leave the input `link` runs into unconnected."""
        target = self.node(link.target_id)
        if target is not None and link.target_slot < len(target.inputs or []):
            entry = target.inputs[link.target_slot]
            if entry.link == link.id:
                entry.link = None

    def _link(self, origin, origin_slot, target, input_name):
        slot = _slot(target, target.inputs, input_name, "input")
        link = Link(max((l.id for l in self.links), default=0) + 1, origin.id, origin_slot, target.id, slot,
                    target.inputs[slot].type)
        self.links.append(link)
        output = origin.outputs[origin_slot]
        output.links = list(output.links or []) + [link.id]
        target.inputs[slot].link = link.id
        return link

    def remove_node(self, node):
        """Remove `node` and every link into or out of it."""
        for link in self.links_into(node.id) + self.links_from(node.id):
            self.disconnect(link.id)
        self.nodes.remove(node)

    def _set_extra(self, key, value):
        """The frontend leaves an empty entry out."""
        if self.extra is UNSET:
            self.extra = {}
        if value:
            self.extra[key] = value
        else:
            self.extra.pop(key, None)


def _slot(node, entries, name, what):
    """The place of the input or output (`what`) called `name` among `entries` of `node`."""
    for slot, entry in enumerate(entries or []):
        if entry.name == name:
            return slot
    raise KeyError(f"node #{node.id} ({node.type}) has no {what} called {name!r}")
