"""The inputs of a shipped API workflow by name, from the map kept beside it (workflows/api/<name>.inputs.json).

An API workflow addresses its nodes by id; titles are not unique and a widget has no name of its own in the
graph, so each API workflow carries a declared map: argument name -> (node id, class_type, input name), and its
outputs by name. A test checks every map against both copies of its workflow (API and UI), so a renumbered
workflow fails there and not in a user's render. The shipped workflow files themselves never change for a map.
"""
import copy
import json
from dataclasses import dataclass
from pathlib import Path

from pulid.errors import PulidError

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows" / "api"
SUFFIX = ".inputs.json"


@dataclass(frozen=True)
class Slot:
    """One input of one node: where an argument goes (`input` is None for an output node)."""

    node: str
    class_type: str
    input: str | None = None


@dataclass(frozen=True)
class InputMap:
    """The declared inputs and outputs of one API workflow file."""

    workflow: Path
    inputs: dict
    outputs: dict

    @classmethod
    def of(cls, workflow) -> "InputMap":
        """The map beside `workflow` (<name>.inputs.json); a PulidError naming the file when it has none."""
        workflow = Path(workflow)
        path = workflow.with_name(workflow.stem + SUFFIX)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PulidError(f"{workflow} has no input map ({path.name} beside it): use a workflow of the pack's "
                             f"workflows/api folder, or a copy that keeps its node ids.") from None
        except (OSError, ValueError) as exc:
            raise PulidError(f"Cannot read the input map {path}: {exc}.") from None
        return cls(workflow, {k: Slot(**v) for k, v in data["inputs"].items()},
                   {k: Slot(**v) for k, v in data["outputs"].items()})

    @classmethod
    def shipped(cls, name) -> "InputMap":
        """The map of the pack's workflows/api/<name>.json."""
        return cls.of(WORKFLOWS / f"{name}.json")

    def _node(self, prompt, arg):
        slot = self.inputs[arg]
        node = prompt.get(slot.node)
        if node is None or node.get("class_type") != slot.class_type:
            raise PulidError(f"The workflow has no {slot.class_type} node with id {slot.node} for "
                             f"--{arg.replace('_', '-')}; use the pack's {self.workflow.name} or a copy that keeps "
                             f"its node ids.")
        return node

    def fill(self, workflow: dict, values: dict) -> dict:
        """A copy of the API workflow with `values` (argument name -> value, None = keep) filled in."""
        prompt = copy.deepcopy(workflow)
        for arg, value in values.items():
            if value is not None:
                self._node(prompt, arg)["inputs"][self.inputs[arg].input] = value
        return prompt

    def value(self, workflow: dict, arg):
        """The workflow's own value of `arg` (None when its node is not there)."""
        slot = self.inputs[arg]
        node = workflow.get(slot.node) or {}
        return node.get("inputs", {}).get(slot.input) if node.get("class_type") == slot.class_type else None
