"""Every relative link and anchor in the documentation resolves.

Checked: README.md, CONTRIBUTING.md, docs/*.md and the nodes' help pages web/docs/*.md. A link is a
Markdown `[text](target)` or `![alt](target)`, or an HTML `src="..."`/`href="..."`. A relative target must
name a file of the repository; a `#fragment` must be a heading of that file (GitHub's anchors: lower case,
punctuation dropped, spaces to hyphens). Links to this repository's GitHub page (`Repository` in
pyproject.toml, as the help pages use) are checked against README.md. Other web addresses are not fetched.
"""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md"),
                *(ROOT / "web" / "docs").glob("*.md")])
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|\b(?:src|href)=\"([^\"]+)\"")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def repository_url():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.M).group(1).rstrip("/")


def anchors(path):
    """GitHub's heading anchors of a Markdown file, with -1, -2 … for repeated headings."""
    seen, out = {}, set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower().replace("`", "")).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def links(text):
    text = FENCE.sub("", text)
    text = re.sub(r"`[^`\n]*`", "", text)  # code spans are not links
    return [a or b for a, b in LINK.findall(text)]


def problems(path, repo, text=None):
    """What does not resolve among the links of `path` (or of `text`, read as if it were that file)."""
    out = []
    for target in links(path.read_text(encoding="utf-8") if text is None else text):
        if target.startswith(repo + "#"):
            file, fragment = ROOT / "README.md", target.split("#", 1)[1]
        elif re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # another web address, mail
        else:
            part, _, fragment = target.partition("#")
            file = (path.parent / part).resolve() if part else path
            if not file.exists():
                out.append(f"{target}: no file {file}")
                continue
        if fragment and file.suffix == ".md" and fragment not in anchors(file):
            out.append(f"{target}: no heading #{fragment} in {file.relative_to(ROOT)}")
    return out


def test_the_documentation_files_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in FILES}
    assert {"README.md", "CONTRIBUTING.md", "docs/internals.md", "web/docs/PuLIDSDXLApply.md"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_and_anchors_resolve(path):
    assert problems(path, repository_url()) == []


def test_the_documentation_has_links_to_check():
    assert sum(len(links(p.read_text(encoding="utf-8"))) for p in FILES) > 40


def test_the_checker_sees_a_broken_link():
    repo = repository_url()
    text = (f"[a](../README.md#no-such-heading) [b](missing.md) [c](../README.md#troubleshooting) "
            f"![d](icon.png) [e]({repo}#no-such-anchor) [f]({repo}#models) `[g](not-a-link.md)`\n")
    found = problems(ROOT / "docs" / "page.md", repo, text)
    assert len(found) == 3, found
    assert "no-such-heading" in found[0] and "missing.md" in found[1] and "no-such-anchor" in found[2]
