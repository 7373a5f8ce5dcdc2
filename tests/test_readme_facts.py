"""The facts README.md writes out for artists agree with the library, their one home.

- The model table (## Models) has one row per entry of pulid/catalog.py's CATALOG: the file name (and, for a
  zip, the members it names plus "(+N unused)" for the rest), "(optional: `--only <name>`)" exactly on the
  entries fetched only on request, the folders, the source as the README shortens each URL
  (`huggingface.co/<owner>/<repo>`, `github.com/<owner>/<repo> release <tag>`, further URLs as "(mirror: …)")
  and the size in bytes.
- The method table (## Fidelity and editability) is pulid/attention.py's PRESETS, and the weight line its
  DEFAULT_WEIGHT.
"""
import re
from pathlib import Path

import pytest

from pulid.attention import DEFAULT_WEIGHT, PRESETS
from pulid.catalog import CATALOG

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
TICKED = re.compile(r"`([^`]+)`")


def table(header):
    """The body rows of the Markdown table whose header line starts with `header`, as lists of cells."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def folders(entry):
    """Where the entry may lie, the fetcher's folder first (`folders` once the catalog has it)."""
    return tuple(getattr(entry, "folders", (entry.folder,)))


def short_source(url):
    """A download URL as the README's Source column writes it."""
    hugging = re.fullmatch(r"https://huggingface\.co/([^/]+/[^/]+)/resolve/.*", url)
    if hugging:
        return f"huggingface.co/{hugging[1]}"
    release = re.fullmatch(r"https://github\.com/([^/]+/[^/]+)/releases/download/([^/]+)/.*", url)
    assert release, f"{url}: teach short_source how the README writes this kind of URL"
    return f"github.com/{release[1]} release {release[2]}"


def source(entry):
    first, *mirrors = entry.urls
    return short_source(first) + (f" (mirror: {', '.join(map(short_source, mirrors))})" if mirrors else "")


MODEL_ROWS = {TICKED.search(row[0])[1]: row for row in table("| File | Folder")}


def test_the_model_table_has_one_row_per_catalog_entry():
    assert list(MODEL_ROWS) == [entry.filename for entry in CATALOG]


@pytest.mark.parametrize("entry", CATALOG, ids=lambda entry: entry.name)
def test_the_model_row_states_the_catalog_entry(entry):
    file_cell, folder_cell, source_cell, size_cell = MODEL_ROWS[entry.filename]
    named = [name for name in TICKED.findall(file_cell)[1:] if not name.startswith("--only")]
    if entry.is_archive:
        assert named and set(named) <= set(entry.installed_names()), file_cell
        assert f"(+{len(entry.members) - len(named)} unused)" in file_cell
    else:
        assert not named, file_cell
    assert ("optional" in file_cell) == (not entry.default)
    if not entry.default:
        assert f"(optional: `--only {entry.name}`)" in file_cell
    readme_folders = tuple(folder.rstrip("/") for folder in TICKED.findall(folder_cell))
    assert readme_folders[0] == folders(entry)[0]
    # Before the catalog names every folder an entry may lie in (`folders`), the README may name more.
    assert set(folders(entry)) <= set(readme_folders)
    if hasattr(entry, "folders"):
        assert readme_folders == folders(entry)
    assert source_cell == source(entry)
    assert size_cell == f"{entry.size:,}"


def test_short_source_reads_both_kinds_of_url():
    assert short_source("https://huggingface.co/a/b/resolve/main/x.pt") == "huggingface.co/a/b"
    assert short_source("https://github.com/a/b/releases/download/v1/x.pth") == "github.com/a/b release v1"


def test_the_method_table_is_the_presets():
    rows = table("| method |")
    header = next(line for line in README.splitlines() if line.startswith("| method |"))
    assert [cell.strip() for cell in header.strip("|").split("|")][1:-1] == list(PRESETS)
    want = {method: [f"num_zero {PRESETS[version][method][0]}, ortho {PRESETS[version][method][1]}"
                     for version in PRESETS] for method in PRESETS["v1.1"]}
    assert {row[0]: row[1:-1] for row in rows} == want


def test_the_weight_line_is_the_default_weight():
    assert (f"default {DEFAULT_WEIGHT['v1.1']} (the official v1.1 value; v1's is {DEFAULT_WEIGHT['v1']})"
            in README)
