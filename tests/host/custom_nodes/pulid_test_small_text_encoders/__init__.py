"""Test-only custom node for the ComfyUI servers the host tests start: shrinks the SDXL text encoders.

The generated test checkpoint carries 3-layer text encoders (tests/make_sdxl.py); ComfyUI would build
the real 12/32-layer ones. Loaded as a custom node, this makes the server build the small ones too.
It registers no node.
"""
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.realpath(__file__)))))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

import make_sdxl  # noqa: E402

make_sdxl.use_small_text_encoders()

NODE_CLASS_MAPPINGS = {}
