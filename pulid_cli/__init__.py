"""PuLID-SDXL's command-line tools: fetch the models, check an install, render one image through ComfyUI.

They sit beside the two halves of the pack and use both: `pulid` (its model catalog, and its loaders
for the doctor) and the shipped workflows the nodes run; nothing in the pack imports them. ComfyUI
itself is reached only as a program and over its HTTP API, never imported. Run them from the pack's
folder: `python -m pulid_cli <command>` (`python -m pulid <command>` still works).
"""
