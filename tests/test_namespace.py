"""Our node ids, types and display names are ours alone: no other PuLID pack registers any of them.

The rule (docs/internals.md, "Names and coexistence"): ids start with PuLIDSDXL, types with PULID_SDXL_, display names say SDXL.
"""
import pytest

from testkit.other_pulid_packs import PACKS
from testkit.pack import import_pack


@pytest.fixture(scope="module")
def ours():
    pack = import_pack()
    types = set()
    for cls in pack.NODE_CLASS_MAPPINGS.values():
        types.update(cls.RETURN_TYPES)
        for section in cls.INPUT_TYPES().values():
            types.update(spec[0] for spec in section.values() if isinstance(spec[0], str))
    custom = {t for t in types if t.isupper() and t not in {"MODEL", "IMAGE", "MASK", "FLOAT", "INT", "STRING",
                                                            "BOOLEAN"}}
    return pack.NODE_CLASS_MAPPINGS, pack.NODE_DISPLAY_NAME_MAPPINGS, custom


def test_our_names_follow_the_prefix_rule(ours):
    ids, names, types = ours
    assert all(i.startswith("PuLIDSDXL") for i in ids)
    assert types and all(t.startswith("PULID_SDXL_") for t in types)
    assert all("SDXL" in n for n in names.values())


@pytest.mark.parametrize("repo", sorted(PACKS))
def test_no_overlap_with(repo, ours):
    ids, names, types = ours
    theirs = PACKS[repo]
    fold = lambda values: {v.casefold() for v in values}  # noqa: E731
    assert not fold(ids) & fold(theirs["ids"]), f"node id shared with {repo}"
    assert not fold(types) & fold(theirs["types"]), f"type shared with {repo}"
    assert not fold(names.values()) & fold(theirs["ids"].values()), f"display name shared with {repo}"
