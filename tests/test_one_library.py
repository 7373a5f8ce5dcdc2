"""Outside ComfyUI the library has one identity: the pack's `pulid` (what nodes/ raises and uses), the
top-level `pulid` (tests, bench/) and what pulid_cli imports are the same module objects, so an
`except pulid.errors.PulidError` catches what a node raises (testkit.pack)."""
import sys

import pulid.errors
from pulid_cli import main as cli
from testkit.pack import PACK, pack_module


def test_the_pack_library_is_the_top_level_library():
    assert pack_module("pulid") is pulid
    assert pack_module("pulid.errors") is pulid.errors
    assert pack_module("pulid.errors").PulidError is pulid.errors.PulidError


def test_every_library_module_has_one_object():
    pack_module("pulid")
    prefix = f"{PACK}.pulid"
    copies = {name: module for name, module in sys.modules.items()
              if name == prefix or name.startswith(prefix + ".")}
    assert len(copies) > 5
    assert all(sys.modules[name[len(PACK) + 1:]] is module for name, module in copies.items())


def test_nodes_and_the_command_line_raise_and_catch_one_error_class():
    pack_module("nodes")
    nodes = [module for name, module in sys.modules.items() if name.startswith(f"{PACK}.nodes.")]
    raised = [module.PulidError for module in nodes if hasattr(module, "PulidError")]
    assert raised and all(cls is pulid.errors.PulidError for cls in raised)
    assert cli.PulidError is pulid.errors.PulidError
