"""What people type in the node search when they look for face-identity nodes (ComfyUI's SEARCH_ALIASES)."""

FACE_ID = ["pulid", "face id", "faceid", "identity", "likeness", "face swap", "portrait", "instantid", "photomaker",
           "ipadapter faceid", "consistent character"]
"""Shared by every node of the pack; each adds its own words."""
