"""Node translations (locales/<lang>/nodeDefs.json) and help pages (web/docs/<NodeId>.md) cover every node."""
import json
import re
from pathlib import Path

import pytest

from pack import import_pack

REPO = Path(__file__).resolve().parents[1]


def load(lang):
    return json.loads((REPO / "locales" / lang / "nodeDefs.json").read_text(encoding="utf-8"))


def test_english_is_current():
    import sys

    sys.path.insert(0, str(REPO / "tools"))
    import locales

    assert load("en") == locales.english(), "run `python tools/locales.py` after changing a node's texts"


def _keys(defs):
    return {node: (set(d["inputs"]), set(d["outputs"])) for node, d in defs.items()}


def test_chinese_has_every_node_input_and_output():
    en, zh = load("en"), load("zh")
    assert _keys(zh) == _keys(en)
    for node, d in zh.items():
        assert re.search(r"[\u4e00-\u9fff]", d["display_name"]), node
        assert d["description"] and d["display_name"] != en[node]["display_name"]
        for part in ("inputs", "outputs"):
            for key, entry in d[part].items():
                assert entry["name"] and entry.get("tooltip"), f"{node} {part} {key}"


@pytest.mark.parametrize("node_id", list(import_pack().NODE_CLASS_MAPPINGS))
def test_help_page_names_every_input_and_output(node_id):
    cls = import_pack().NODE_CLASS_MAPPINGS[node_id]
    page = (REPO / "web" / "docs" / f"{node_id}.md").read_text(encoding="utf-8")
    assert page.startswith(f"# {import_pack().NODE_DISPLAY_NAME_MAPPINGS[node_id]}\n")
    names = [n for section in cls.INPUT_TYPES().values() for n in section] + list(cls.RETURN_NAMES)
    missing = [n for n in names if f"**{n}**" not in page]
    assert not missing, f"web/docs/{node_id}.md does not describe {missing}"
    assert "## Errors and their fix" in page


def test_every_node_has_search_aliases_and_output_tooltips():
    for node_id, cls in import_pack().NODE_CLASS_MAPPINGS.items():
        assert "pulid" in cls.SEARCH_ALIASES and len(cls.SEARCH_ALIASES) > 3, node_id
        assert len(getattr(cls, "OUTPUT_TOOLTIPS", ())) == len(cls.RETURN_TYPES), node_id
