"""Write the inputs and outputs of each help page (web/docs/<NodeId>.md) from the node classes: name, type,
default and range, tooltip. The node definitions are the one place these facts are written; the page keeps
its hand-written prose (what the node is for, recipe, errors) outside the markers.

    python -m tools.help_pages       # rewrite the generated parts; tests/test_locales.py checks they are current
"""
import logging
import re
from pathlib import Path

from testkit.pack import import_pack, pack_module

REPO = Path(__file__).resolve().parents[1]

log = logging.getLogger(__name__)

START = "<!-- inputs:start: generated from nodes/ by tools/help_pages.py -->"
END = "<!-- inputs:end -->"
NUMBERED = re.compile(r"(.+) #(\d+)")


def page_path(node_id):
    return REPO / "web" / "docs" / f"{node_id}.md"


def _choices(values):
    """`a`, `b` or `c`; a run of numbered choices (`size #1` … `size #8`) is written as its ends, so
    Encode Face's 25 face choices stay one readable line."""
    runs = []  # [first value, last value, prefix, last number]
    for value in values:
        match = NUMBERED.fullmatch(value)
        prev = runs[-1] if runs else None
        if match and prev and prev[2] == match[1] and prev[3] + 1 == int(match[2]):
            prev[1], prev[3] = value, int(match[2])
        else:
            runs.append([value, value, match[1] if match else None, int(match[2]) if match else None])
    words = [f"`{first}`" if first == last else f"`{first}` … `#{number}`" for first, last, _, number in runs]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _kind(kind, options, optional):
    """The parenthesis after an input's name: its type or choices, default and range."""
    if isinstance(kind, pack_module("nodes.folders").Installed):
        parts = ["listed from the model folders"]
    elif isinstance(kind, list):
        parts = [_choices(kind)]
    else:
        parts = [kind]
    if "default" in options:
        default = options["default"]
        if isinstance(default, bool):
            parts.append(f"default {'on' if default else 'off'}")
        elif isinstance(default, str) and default:
            parts.append(f"default `{default}`")
        elif isinstance(default, str):
            parts.append("empty by default")
        else:
            parts.append(f"default {default}")
    if "min" in options and "max" in options:
        parts.append(f"{options['min']} to {options['max']}")
    if optional:
        parts.append("optional")
    return "; ".join(parts) if isinstance(kind, list) else ", ".join(parts)


def generated(node_id):
    """The markdown between the markers of node_id's page (the markers included)."""
    cls = import_pack().NODE_CLASS_MAPPINGS[node_id]
    lines = [START, "## Inputs"]
    for section, inputs in cls.INPUT_TYPES().items():
        for name, spec in inputs.items():
            options = spec[1] if len(spec) > 1 else {}
            lines.append(f"- **{name}** ({_kind(spec[0], options, section == 'optional')}): {options['tooltip']}")
    if cls.RETURN_TYPES:
        lines += ["", "## Output" if len(cls.RETURN_TYPES) == 1 else "## Outputs"]
        for name, kind, tip in zip(cls.RETURN_NAMES, cls.RETURN_TYPES, cls.OUTPUT_TOOLTIPS):
            lines.append(f"- **{name}** ({kind}): {tip}")
    return "\n".join(lines + [END])


def with_generated(node_id, page):
    """`page` with its generated part replaced by the current one; a ValueError when it has no markers."""
    start, end = page.find(START), page.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{page_path(node_id)} lacks the lines {START!r} … {END!r} that hold its inputs")
    return page[:start] + generated(node_id) + page[end + len(END):]


def main():
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for node_id in import_pack().NODE_CLASS_MAPPINGS:
        path = page_path(node_id)
        page = path.read_text(encoding="utf-8")
        new = with_generated(node_id, page)
        if new != page:
            path.write_text(new, encoding="utf-8")
            log.info("%s", path)


if __name__ == "__main__":
    main()
