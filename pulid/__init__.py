"""PuLID for SDXL: host-free library (no ComfyUI imports)."""
