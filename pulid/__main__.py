"""`python -m pulid {fetch-models,doctor,generate}` (run from the pack's folder): the tools in pulid_cli/.

Only this entry point reaches out of the library; nothing in `pulid` imports the tools.
"""
import sys

from pulid_cli.main import main

sys.exit(main())
