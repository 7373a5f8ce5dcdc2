"""ComfyUI entry point of PuLID-SDXL: the node mappings and the web folder (the nodes' help pages, web/docs/).

ComfyUI imports this folder under its directory name, so everything inside uses relative imports. It also
finds workflows/ (template browser) and locales/ (node names and tooltips per language) by their names.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
