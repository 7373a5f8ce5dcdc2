"""Write locales/en/nodeDefs.json from the node classes (display names, descriptions, input labels and
tooltips, output names and tooltips): the frontend's node translations, in its nodeDefs format.

    python -m tools.locales                  # rewrite the English file; tests/test_locales.py checks it is current
    python -m tools.locales --translated zh  # after bringing locales/zh up to date: record the English it follows

Other languages (locales/zh/) are translated by hand from it. Beside each one's nodeDefs.json, SOURCE_NAME
keeps the English that translation was made from (a file the frontend does not load: ComfyUI reads main.json,
nodeDefs.json, commands.json and settings.json only), so the test can name each text whose English changed
since it was translated.
"""
import argparse
import json
import sys
from pathlib import Path

from testkit.pack import import_pack

REPO = Path(__file__).resolve().parents[1]
SOURCE_NAME = "source.en.json"
"""locales/<lang>/SOURCE_NAME: the English locales/<lang>/nodeDefs.json is a translation of."""


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


def write(path, defs):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(defs, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sys.stdout.write(f"{path}\n")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tools.locales", description=__doc__.split("\n\n")[0])
    parser.add_argument("--translated", metavar="LANG",
                        help=f"record the current English as what locales/LANG is translated from ({SOURCE_NAME})")
    args = parser.parse_args(argv)
    if args.translated:
        folder = REPO / "locales" / args.translated
        if args.translated == "en" or not (folder / "nodeDefs.json").is_file():
            parser.error(f"locales/{args.translated}/nodeDefs.json is not a translation of this pack")
        write(folder / SOURCE_NAME, english())
    else:
        write(REPO / "locales" / "en" / "nodeDefs.json", english())


if __name__ == "__main__":
    main()
