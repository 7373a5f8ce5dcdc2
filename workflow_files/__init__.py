"""UI-format workflow files as data: their graph (graph.py, on records.py's exact round trip), where the
frontend draws them (geometry.py), placing and routing their nodes (layout.py), and the migration of cubiq's
PuLID_ComfyUI workflows (migrate.py, with cubiq.py's node tables)."""
