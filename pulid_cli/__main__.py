"""`python -m pulid_cli {fetch-models,doctor,generate,migrate}`, run from the pack's folder.

`python -m pulid ...` (the first spelling) starts this same command; see pulid/__main__.py.
"""
import sys

from .main import main

sys.exit(main())
