"""ComfyUI entry point of PuLID-SDXL: the node mappings and the template workflows folder.

ComfyUI imports this folder under its directory name, so everything inside uses relative imports.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
