"""Regenerate the README pictures and the template thumbnails: each workflows/*.json loaded in the real
ComfyUI frontend, saved as docs/workflow_<name>.png and, smaller, as workflows/<name>.jpg (the frontend's
template browser shows a .jpg of the workflow's name beside it).

    COMFYUI_PATH=/path/to/ComfyUI python -m tools.screenshots [--out docs]   (or: make screenshots)

Uses the same harness as tests/host/test_browser.py (testkit/browser_harness.py) (server on a free 127.0.0.1 port, the host's
pinned frontend, placeholder model files, headless /usr/bin/chromium), so a picture is only made
from a workflow that loads without a dialog.
"""
import argparse
import logging
import os
import sys
import tempfile
from pathlib import Path

from testkit import browser_harness as bh

REPO = Path(__file__).resolve().parents[1]

log = logging.getLogger("screenshots")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--comfyui", default=os.environ.get("COMFYUI_PATH"),
                        help="ComfyUI checkout (default: $COMFYUI_PATH)")
    parser.add_argument("--out", default=str(REPO / "docs"), help="folder for the PNGs (default: docs/)")
    parser.add_argument("--thumbnails", default=str(REPO / "workflows"),
                        help="folder for the template thumbnails (default: workflows/)")
    parser.add_argument("--colors", type=int, default=128, help="palette size of the saved PNGs")
    parser.add_argument("--python", default=os.environ.get("COMFYUI_PYTHON", sys.executable),
                        help="interpreter with ComfyUI's requirements that runs the server "
                             "(default: $COMFYUI_PYTHON, else this one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not args.comfyui:
        parser.error("set COMFYUI_PATH or pass --comfyui to a ComfyUI checkout")

    workflows = bh.find_workflows(REPO / "workflows")
    if not workflows:
        parser.error(f"no UI-format workflow in {REPO / 'workflows'}")
    packages = bh.host_packages_dir(args.comfyui, REPO / "tests" / "_generated", python=args.python)
    with tempfile.TemporaryDirectory(prefix="pulid-shots-") as work, \
            bh.ComfyServer(args.comfyui, work, packages_dir=packages, python=args.python) as server:
        mapping = server.folder_of_combos()
        server.add_placeholders([w.api for w in workflows if w.api], mapping,
                                extra_models=[e for w in workflows for e in bh.model_entries(w.ui)])
        with bh.Frontend(server.url) as ui:
            log.info("ComfyUI %s, frontend %s", args.comfyui, ui.version)
            for wf in workflows:
                report = ui.load(wf.ui)
                if report.dialogs:
                    raise SystemExit(f"{wf.ui_path.name}: a dialog opened on load: {report.dialogs}")
                path = ui.screenshot(Path(args.out) / f"workflow_{wf.name}.png", colors=args.colors)
                thumbnail = _thumbnail(path, Path(args.thumbnails) / f"{wf.name}.jpg")
                for made in (path, thumbnail):
                    log.info("%s  %d KB", made.relative_to(REPO) if made.is_relative_to(REPO) else made,
                             made.stat().st_size // 1024)


def _thumbnail(picture, path, size=(640, 400)):
    from PIL import Image

    with Image.open(picture) as im:
        small = im.convert("RGB")
        small.thumbnail(size, Image.Resampling.LANCZOS)
        small.save(path, "JPEG", quality=85, optimize=True)
    return path


if __name__ == "__main__":
    main()
