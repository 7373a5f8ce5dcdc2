"""`python -m pulid_cli {fetch-models,doctor,generate}`; `python -m pulid ...` is the same command."""
import sys

from .main import main

sys.exit(main())
