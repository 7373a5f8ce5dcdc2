"""Maintenance scripts of PuLID-SDXL (development only, never shipped): run each from the repo root as
`python -m tools.<name>` (see its docstring for the command line)."""
