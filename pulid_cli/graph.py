"""A UI-format ComfyUI workflow (the JSON the frontend saves, version 0.4) as named types.

The file stores a link as a bare list, [id, origin node, origin slot, target node, target slot, type], and
the reroutes a wire runs through inside "extra"; code that indexes those by position breaks silently the day
one position is misremembered. Here every part has a name, and the graph edits that keep both ends of a link
in step (connect, disconnect, retarget, remove a node) are written once.

Workflow.from_dict and to_dict round-trip a file exactly: keys this module does not read (the frontend adds
some every few releases) are kept, every key is written back where the file had it, and a key the file lacks
stays absent (UNSET), so a tool that edits one node rewrites nothing else of the file.
"""
import copy
import enum
from dataclasses import dataclass, field, fields


class Absent(enum.Enum):
    """A key the file does not have: None is JSON's null, a value that is written back."""

    UNSET = "UNSET"

    def __bool__(self):
        return False

    def __repr__(self):
        return "UNSET"


UNSET = Absent.UNSET


def plain(value):
    """`value` with every record, link and container in it as fresh JSON data."""
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, Link):
        return value.to_list()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@dataclass
class Record:
    """A JSON object: the keys a subclass declares as fields, the others in `unknown`, each written back in
    the file's order (new keys after it, in field order)."""

    unknown: dict = field(default_factory=dict, kw_only=True, repr=False)
    keys: tuple = field(default=(), kw_only=True, repr=False, compare=False)  # the file's key order

    NAMES = {}  # field -> JSON key where they differ
    ITEMS = {}  # field -> how one item of its list is read

    @classmethod
    def from_dict(cls, data):
        by_key = {cls.NAMES.get(f.name, f.name): f.name for f in cls._fields()}
        values, unknown = {}, {}
        for key, value in data.items():
            name = by_key.get(key)
            if name is None:
                unknown[key] = value
            elif name in cls.ITEMS and isinstance(value, list):
                values[name] = [cls.ITEMS[name](item) for item in value]
            else:
                values[name] = value
        return cls(**values, unknown=unknown, keys=tuple(data))

    def to_dict(self):
        data = {self.NAMES.get(f.name, f.name): plain(getattr(self, f.name)) for f in self._fields()
                if getattr(self, f.name) is not UNSET}
        data.update(plain(self.unknown))
        ordered = {key: data.pop(key) for key in self.keys if key in data}
        return {**ordered, **data}

    def get(self, name, default=None):
        """Field `name`, or `default` where the file has no such key."""
        value = getattr(self, name)
        return default if value is UNSET else value

    @classmethod
    def _fields(cls):
        return [f for f in fields(cls) if f.name not in ("unknown", "keys")]


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

    def connect(self, origin_id, origin_slot, target_id, target_slot, kind):
        """A new link (id one above the highest) from an output to an input; returns it."""
        link = Link(max((l.id for l in self.links), default=0) + 1, origin_id, origin_slot, target_id, target_slot,
                    kind)
        self.links.append(link)
        output = self.node(origin_id).outputs[origin_slot]
        output.links = list(output.links or []) + [link.id]
        target = self.node(target_id)
        if target_slot < len(target.inputs or []):
            target.inputs[target_slot].link = link.id
        return link

    def retarget(self, link, node, slot):
        """Point `link` at input `slot` of `node` instead of the input it ran into."""
        self._unplug(link)
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
