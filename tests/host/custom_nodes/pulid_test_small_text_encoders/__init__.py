"""Test-only custom node for the ComfyUI servers the host tests start: shrinks the SDXL text encoders.

The generated test checkpoint carries 3-layer text encoders (testkit/make_sdxl.py); ComfyUI would build
the real 12/32-layer ones. Loaded as a custom node, this makes the server build the small ones too.
It registers no node.
"""
import os
import sys

# This runs inside a ComfyUI server process, whose sys.path has ComfyUI's folder and not this repo, so the
# repo root goes on it to import testkit. Appended, not prepended: the repo's nodes/ folder must never
# shadow ComfyUI's nodes.py.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.realpath(__file__))))))
if ROOT not in sys.path:
    sys.path.append(ROOT)

from testkit import make_sdxl  # noqa: E402

make_sdxl.use_small_text_encoders()

NODE_CLASS_MAPPINGS = {}
