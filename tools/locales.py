"""Write locales/en/nodeDefs.json from the node classes (display names, descriptions, input labels and
tooltips, output names and tooltips): the frontend's node translations, in its nodeDefs format.

    python -m tools.locales          # rewrite the English file; tests/test_locales.py checks it is current

Other languages (locales/zh/) are translated by hand from it; the test checks they have the same keys.
"""
import json
import sys
from pathlib import Path

from testkit.pack import import_pack

REPO = Path(__file__).resolve().parents[1]


def english():
    pack = import_pack()
    defs = {}
    for node_id, cls in pack.NODE_CLASS_MAPPINGS.items():
        inputs = {}
        for section in cls.INPUT_TYPES().values():
            for name, spec in section.items():
                options = spec[1] if len(spec) > 1 else {}
                inputs[name] = {"name": name, **({"tooltip": options["tooltip"]} if "tooltip" in options else {})}
        tips = getattr(cls, "OUTPUT_TOOLTIPS", ())
        outputs = {str(i): {"name": name, **({"tooltip": tips[i]} if i < len(tips) else {})}
                   for i, name in enumerate(cls.RETURN_NAMES)}
        defs[node_id] = {"display_name": pack.NODE_DISPLAY_NAME_MAPPINGS[node_id], "description": cls.DESCRIPTION,
                         "inputs": inputs, "outputs": outputs}
    return defs


def main():
    path = REPO / "locales" / "en" / "nodeDefs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(english(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sys.stdout.write(f"{path}\n")


if __name__ == "__main__":
    main()
