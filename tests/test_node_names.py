"""Every node that a message, tooltip or docstring of the pack names is called by its display name.

The display names live in NODE_DISPLAY_NAME_MAPPINGS (nodes/); pulid/ and pulid_cli/ must not import
nodes/, so their texts write the names out and this test keeps them true. How a name is found, in every
string literal (f-strings' literal parts included) of the .py files under pulid/, nodes/ and pulid_cli/,
and in README, CONTRIBUTING, docs/ and the help pages:

- a run of capitalised words ending in a display name's suffix, "(SDXL)" or "(PuLID SDXL)", e.g.
  "Save PuLID Embedding (SDXL)": it must end in a display name (a leading "From" or "Use" is allowed);
- a run of capitalised words (optionally followed by a parenthesis of capitalised words, "(SDXL)" or
  "(Advanced)") that starts with the first two words of a display name ("Load PuLID", "Encode Face",
  "Face Similarity", ...), e.g. "Save PuLID Embedding node": it must be a display name, or one without its
  parenthesised suffix ("Apply PuLID: weight is nan", whose opening README lists, names Apply PuLID (SDXL)).

A capitalised word is one that starts with an upper-case letter; a name ends at the first word that does
not (so "the Apply node" and lower-case prose never match).
"""
import ast
import re
from pathlib import Path

from testkit.pack import import_pack

REPO = Path(__file__).resolve().parents[1]
SCANNED = ("pulid", "nodes", "pulid_cli")
DOCS = ("README.md", "CONTRIBUTING.md", "docs/*.md", "web/docs/*.md")
WORD = r"[A-Z][\w-]*"
MORE = rf"(?:(?: (?:by|of))? {WORD})*"
"""Further capitalised words of a name, a lower-case joining word allowed between two (Best by Likeness)."""
SUFFIX = r" \((?:PuLID )?SDXL\)"

DISPLAY_NAMES = set(import_pack().NODE_DISPLAY_NAME_MAPPINGS.values())
SHORT_NAMES = {re.sub(r" \([^)]*\)$", "", name) for name in DISPLAY_NAMES}
PREFIXES = sorted({" ".join(name.split()[:2]) for name in SHORT_NAMES})
SUFFIXED = re.compile(rf"(?<![\w-]){WORD}{MORE}{SUFFIX}")
PREFIXED = re.compile(rf"(?<![\w-])(?:{'|'.join(map(re.escape, PREFIXES))}){MORE}"
                      rf"(?: \({WORD}(?: {WORD})*\))?")


def literals(path):
    """(line, text) of every string literal in a Python file."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def _known_tail(name):
    """`name`, or its shortest ending that is a display name ("Use Encode Face (PuLID SDXL)" -> "Encode Face
    (PuLID SDXL)"): a sentence's first word or a verb before a name is part of the run of capitals."""
    words = name.split(" ")
    tails = [" ".join(words[i:]) for i in range(len(words))]
    return next((tail for tail in tails if tail in DISPLAY_NAMES), name)


def named_nodes(text):
    """The display-name-like names in `text` (whitespace folded: a name may wrap): see the module docstring."""
    text = " ".join(text.split())
    found = {_known_tail(match[0]) for match in SUFFIXED.finditer(text)}
    found |= {match[0] for match in PREFIXED.finditer(text)}
    return found


def test_the_finder_sees_wrong_and_right_names():
    assert named_nodes("made by the Save PuLID Embedding node of this pack") == {"Save PuLID Embedding"}
    assert named_nodes("use Load PuLID Embeddings (SDXL) instead") == {"Load PuLID Embeddings (SDXL)"}
    assert named_nodes("From Face Encoder Loader (SDXL).") == {"From Face Encoder Loader (SDXL)"}
    assert named_nodes("Use Load PuLID Face Encoder (SDXL).") == {"Load PuLID Face Encoder (SDXL)"}
    assert named_nodes("until Evaluate PuLID\n    Batch needs it") == {"Evaluate PuLID Batch"}
    assert named_nodes("Apply PuLID: weight is nan; the Apply node") == {"Apply PuLID"}
    assert named_nodes("Apply PuLID (Advanced) sets them") == {"Apply PuLID (Advanced)"}
    assert named_nodes("encode face, load pulid model") == set()


def test_the_pack_has_the_names_this_test_assumes():
    assert PREFIXES and all(SUFFIXED.fullmatch(name) or PREFIXED.fullmatch(name) for name in DISPLAY_NAMES)


def texts():
    """(where, text) of every string literal of SCANNED's Python files and of each page of DOCS."""
    for folder in SCANNED:
        for path in sorted((REPO / folder).rglob("*.py")):
            yield from ((f"{path.relative_to(REPO)}:{line}", text) for line, text in literals(path))
    for pattern in DOCS:
        for path in sorted(REPO.glob(pattern)):
            yield str(path.relative_to(REPO)), path.read_text(encoding="utf-8")


def test_messages_name_nodes_by_their_display_names():
    known = DISPLAY_NAMES | SHORT_NAMES
    wrong = [f"{where}: {name!r}" for where, text in texts() for name in named_nodes(text) - known]
    assert not wrong, ("these texts name a node that NODE_DISPLAY_NAME_MAPPINGS does not have (use its display "
                       "name, or that name without its '(…)' suffix):\n" + "\n".join(wrong))
