"""Test support for PuLID-SDXL: the shared helpers that tests/, bench/ and tools/ import as `testkit.<name>`.

Development only, never shipped (.comfyignore leaves it out of the Registry archive). It is a package at the
repo root so every caller imports it the same way: pytest through `pythonpath = ["."]` (pyproject.toml),
bench/ and tools/ as `python -m bench.<name>` / `python -m tools.<name>` from the repo root. The pack's
own `nodes/` is never made a top-level package here: that name is ComfyUI's nodes.py.

- pack: the repo imported as ComfyUI imports it, with one identity for the library (`pulid` is the pack's).
- make_pulid, make_face_models, make_sdxl: writers of test model files in the real formats.
- numerics: the float comparison rule (CONTRIBUTING.md, "Float comparisons").
- comfyui_inprocess: ComfyUI imported into this process (host tests, benchmarks).
- comfyui_server: a real ComfyUI server with this pack, for the command-line tools' host tests.
- browser_harness: a real ComfyUI server and its frontend in headless Chromium.
- cubiq_workflows, other_pulid_packs: what other PuLID packs' workflows and nodes look like.
"""
