"""Node translations (locales/<lang>/nodeDefs.json) and help pages (web/docs/<NodeId>.md) cover every node.

The node definitions (nodes/*.py) are the one home of each input's facts: locales/en and the help pages'
input lists are generated from them (tools/locales.py, tools/help_pages.py) and must be current. Each
translation (locales/<lang>/) keeps the English it was made from beside it (source.en.json): a text whose
English changed since is a stale translation.
"""
import importlib
import json
import re
from pathlib import Path

import pytest

from testkit.pack import import_pack

REPO = Path(__file__).resolve().parents[1]
NODE_IDS = list(import_pack().NODE_CLASS_MAPPINGS)


def load(lang):
    return json.loads((REPO / "locales" / lang / "nodeDefs.json").read_text(encoding="utf-8"))


def tool(name):
    """A module of tools/ (a package run as `python -m tools.<name>`), imported as the command imports it."""
    return importlib.import_module(f"tools.{name}")


def test_english_is_current():
    assert load("en") == tool("locales").english(), "run `python -m tools.locales` after changing a node's texts"


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_help_page_inputs_are_current(node_id):
    help_pages = tool("help_pages")
    page = help_pages.page_path(node_id).read_text(encoding="utf-8")
    assert page == help_pages.with_generated(node_id, page), (
        f"web/docs/{node_id}.md: run `python -m tools.help_pages` after changing a node's inputs or tooltips")


def translations():
    return sorted(path.name for path in (REPO / "locales").iterdir() if path.is_dir() and path.name != "en")


def texts(defs):
    """(node, field path) -> English or translated text, for every text of a nodeDefs file."""
    out = {}
    for node, d in defs.items():
        out[(node, "display_name")] = d["display_name"]
        out[(node, "description")] = d["description"]
        for part in ("inputs", "outputs"):
            for key, entry in d[part].items():
                out.update({(node, f"{part}.{key}.{field}"): text for field, text in entry.items()})
    return out


def stale(source, english):
    """The texts whose English differs from the English they were translated from (added, gone or changed)."""
    was, now = texts(source), texts(english)
    return sorted(f"{node} {field}" for node, field in set(was) | set(now)
                  if was.get((node, field)) != now.get((node, field)))


def test_stale_finds_a_changed_english_text():
    en = load("en")
    changed = json.loads(json.dumps(en))
    changed["PuLIDSDXLFaceSimilarity"]["outputs"]["0"]["tooltip"] += " More."
    assert stale(en, en) == []
    assert stale(en, changed) == ["PuLIDSDXLFaceSimilarity outputs.0.tooltip"]


@pytest.mark.parametrize("lang", translations())
def test_translation_follows_the_current_english(lang):
    """locales/<lang>/source.en.json is the English the translation was made from: any text of locales/en
    that changed since must be translated again before the source is recorded anew."""
    source_path = REPO / "locales" / lang / tool("locales").SOURCE_NAME
    assert source_path.is_file(), f"{source_path}: run `python -m tools.locales --translated {lang}` once translated"
    changed = stale(json.loads(source_path.read_text(encoding="utf-8")), load("en"))
    assert not changed, (
        f"locales/{lang}/nodeDefs.json was translated from older English; translate these again, then run "
        f"`python -m tools.locales --translated {lang}`:\n" + "\n".join(changed))


def _keys(defs):
    return {node: (set(d["inputs"]), set(d["outputs"])) for node, d in defs.items()}


def test_chinese_has_every_node_input_and_output():
    en, zh = load("en"), load("zh")
    assert _keys(zh) == _keys(en)
    for node, d in zh.items():
        assert d["display_name"] != en[node]["display_name"]
        for text in (d["display_name"], d["description"]):
            assert re.search(r"[\u4e00-\u9fff]", text), node
        for part in ("inputs", "outputs"):
            for key, entry in d[part].items():
                assert entry["name"] and re.search(r"[\u4e00-\u9fff]", entry.get("tooltip", "")), f"{node} {part} {key}"


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_help_page_has_title_and_errors(node_id):
    page = (REPO / "web" / "docs" / f"{node_id}.md").read_text(encoding="utf-8")
    assert page.startswith(f"# {import_pack().NODE_DISPLAY_NAME_MAPPINGS[node_id]}\n")
    assert "## Errors and their fix" in page


def test_every_node_has_search_aliases_and_output_tooltips():
    for node_id, cls in import_pack().NODE_CLASS_MAPPINGS.items():
        assert "pulid" in cls.SEARCH_ALIASES and len(cls.SEARCH_ALIASES) > 3, node_id
        assert len(getattr(cls, "OUTPUT_TOOLTIPS", ())) == len(cls.RETURN_TYPES), node_id
