"""JSON objects as dataclasses that write back exactly what they read.

A Record subclass declares the keys it reads as fields; from_dict keeps every other key (the frontend adds some
every few releases) in `unknown`, to_dict writes each key back where the file had it, and a key the file lacks
stays absent (UNSET), so a tool that edits one value rewrites nothing else of the file.
"""
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
    """`value` with every record, row (an object written as a JSON array: it has to_list, as graph.Link) and
    container in it as fresh JSON data."""
    if isinstance(value, Record):
        return value.to_dict()
    if hasattr(value, "to_list"):
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
