"""Render one image with the pack's basic workflow through ComfyUI, in this process, without its server.

ComfyUI is imported from the folder the user names, this pack is loaded into it the way ComfyUI
loads any custom node, and the API-format workflow in workflows/api/ is filled in by node id and
run by ComfyUI's own executor. The image is therefore exactly what the same workflow gives in the
UI. ComfyUI's internals move between releases (validate_prompt gained a prompt id, PromptExecutor
swapped cache_size for cache_args, load_custom_node became async), so each call below is made
through a small adapter that accepts both forms.

It lives beside the node adapter, not in the host-free pulid/ library: `python -m pulid generate`
loads this file by path (see pulid/cli.py), so `pulid` itself never imports ComfyUI.
"""
import asyncio
import copy
import inspect
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

from pulid.doctor import check_models, format_table
from pulid.errors import ModelFileError, PulidError

log = logging.getLogger(__name__)

PACK_DIR = Path(__file__).resolve().parent.parent
BASIC_WORKFLOW = PACK_DIR / "workflows" / "api" / "pulid_basic.json"

# argument -> (node id, class_type, input name) in workflows/api/pulid_basic.json
INPUTS = {
    "checkpoint": ("1", "CheckpointLoaderSimple", "ckpt_name"),
    "pulid_file": ("2", "PuLIDModelLoader", "pulid_file"),
    "face": ("4", "LoadImage", "image"),
    "weight": ("7", "PuLIDApply", "weight"),
    "method": ("7", "PuLIDApply", "method"),
    "prompt": ("10", "CLIPTextEncode", "text"),
    "negative": ("11", "CLIPTextEncode", "text"),
    "width": ("12", "EmptyLatentImage", "width"),
    "height": ("12", "EmptyLatentImage", "height"),
    "seed": ("13", "KSampler", "seed"),
    "steps": ("13", "KSampler", "steps"),
    "cfg": ("13", "KSampler", "cfg"),
}
SAVE_NODE = ("15", "SaveImage")


class _Server:
    """The few attributes ComfyUI's executor reads from its PromptServer; events go to the debug log."""

    def __init__(self):
        self.client_id = None
        self.last_node_id = None
        self.sockets_metadata = {}

    def send_sync(self, event, data, sid=None):
        if event == "executing" and isinstance(data, dict) and data.get("node"):
            log.info("running node %s", data["node"])
        else:
            log.debug("%s %s", event, data if isinstance(data, dict) else "")

    def queue_updated(self):
        pass


def fill_workflow(workflow: dict, values: dict) -> dict:
    """A copy of the API workflow with `values` (argument name -> value, None = keep) filled in."""
    prompt = copy.deepcopy(workflow)
    for arg, value in values.items():
        if value is None:
            continue
        node_id, class_type, input_name = INPUTS[arg]
        node = prompt.get(node_id)
        if node is None or node.get("class_type") != class_type:
            raise PulidError(
                f"The workflow has no {class_type} node with id {node_id} for --{arg.replace('_', '-')}; "
                f"use the pack's {BASIC_WORKFLOW.name} or a copy that keeps its node ids.")
        node["inputs"][input_name] = value
    return prompt


def generate(*, comfyui, face, prompt, out, negative=None, checkpoint=None, pulid_file=None,
             steps=None, cfg=None, seed=None, weight=None, method=None, width=None, height=None,
             models_dir=None, extra_model_paths=None, workflow=None, cpu=False) -> Path:
    """Render one image and write it to `out`; returns the path written."""
    comfyui = Path(comfyui).expanduser().resolve()
    if not (comfyui / "folder_paths.py").is_file() or not (comfyui / "execution.py").is_file():
        raise PulidError(f"{comfyui} is not a ComfyUI folder (no folder_paths.py / execution.py); "
                         f"--comfyui must be the folder that holds ComfyUI's main.py.")
    face = Path(face).expanduser().resolve()
    if not face.is_file():
        raise PulidError(f"Face image not found: {face}.")
    models = Path(models_dir).expanduser().resolve() if models_dir else comfyui / "models"
    if not extra_model_paths:
        _require_models(models, pulid_file)
    workflow_path = Path(workflow) if workflow else BASIC_WORKFLOW
    with open(workflow_path, encoding="utf-8") as f:
        api_workflow = json.load(f)
    values = dict(pulid_file=pulid_file, weight=weight, method=method, prompt=prompt,
                  negative=negative, width=width, height=height, seed=seed, steps=steps, cfg=cfg)
    out = Path(out).expanduser().resolve()
    with tempfile.TemporaryDirectory(prefix="pulid-generate-") as scratch:
        image = asyncio.run(_run(comfyui, models, extra_model_paths, face, checkpoint, api_workflow,
                                 values, Path(scratch), cpu))
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, out)
    log.info("wrote %s", out)
    return out


def _require_models(models: Path, pulid_file):
    """Stop before importing ComfyUI when a model the workflow needs is missing: the doctor's lines."""
    problems = [c for c in check_models(models, load=False) if c.failed]
    if pulid_file:  # another PuLID file was named: the default one may be absent
        problems = [c for c in problems if c.name != "pulid_v1.1.safetensors"]
    if problems:
        raise ModelFileError("Missing model files:\n" + format_table(problems))


async def _run(comfyui, models, extra_model_paths, face, checkpoint, api_workflow, values, scratch, cpu):
    import_comfyui(comfyui, cpu)
    import execution
    import folder_paths
    import nodes

    if models != comfyui / "models":
        _point_models_at(folder_paths, models)
    if extra_model_paths:
        from utils.extra_config import load_extra_path_config

        load_extra_path_config(str(extra_model_paths))
    for name in ("input", "output", "temp"):
        (scratch / name).mkdir()
    folder_paths.set_input_directory(str(scratch / "input"))
    folder_paths.set_output_directory(str(scratch / "output"))
    folder_paths.set_temp_directory(str(scratch / "temp"))
    face_name = "face" + face.suffix.lower()
    shutil.copyfile(face, scratch / "input" / face_name)

    loaded = nodes.load_custom_node(str(PACK_DIR))
    if inspect.isawaitable(loaded):
        loaded = await loaded
    if loaded is False:
        raise PulidError(f"ComfyUI could not load this pack from {PACK_DIR}; the error is in the log above.")
    if any(n["class_type"] not in nodes.NODE_CLASS_MAPPINGS for n in api_workflow.values()):
        await _maybe_await(nodes.init_builtin_extra_nodes())

    values = dict(values, face=face_name, checkpoint=checkpoint or _default_checkpoint(
        folder_paths, api_workflow))
    prompt = fill_workflow(api_workflow, values)
    prompt_id = str(uuid.uuid4())

    valid = await _validate(execution, prompt_id, prompt)
    if not valid[0]:
        raise PulidError(_validation_message(valid))
    executor = _executor(execution)
    if hasattr(executor, "execute_async"):
        await executor.execute_async(prompt, prompt_id, {}, valid[2])
    else:
        executor.execute(prompt, prompt_id, {}, valid[2])
    if not executor.success:
        raise PulidError(_execution_message(executor))
    return _saved_image(folder_paths, executor)


def import_comfyui(comfyui, cpu: bool = False):
    """Put ComfyUI first on sys.path and pick its device (CPU when asked or when there is no GPU)."""
    comfyui = Path(comfyui).resolve()
    # ComfyUI's modules are top-level (`nodes`, `execution`, `utils`): its folder must come first,
    # ahead of this pack's own folder (which holds a `nodes` package and is on sys.path under -m).
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != PACK_DIR]
    sys.path.insert(0, str(comfyui))
    if "nodes" in sys.modules and not hasattr(sys.modules["nodes"], "load_custom_node"):
        del sys.modules["nodes"]
    import torch
    from comfy.cli_args import args

    if cpu or not (torch.cuda.is_available() or _has_mps(torch)):
        args.cpu = True  # read by comfy.model_management when it is first imported
        log.info("no GPU: ComfyUI runs on the CPU")
    import comfy.model_management  # noqa: F401  (picks the device now, with args set)


def _has_mps(torch):
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def _point_models_at(folder_paths, models: Path):
    """Make `models` the first place every model folder is looked for (like --base-directory)."""
    folder_paths.models_dir = str(models)
    params = inspect.signature(folder_paths.add_model_folder_path).parameters
    for name in list(folder_paths.folder_names_and_paths):
        path = str(models / name)
        if "is_default" in params:
            folder_paths.add_model_folder_path(name, path, is_default=True)
        else:
            folder_paths.folder_names_and_paths[name][0].insert(0, path)


def _default_checkpoint(folder_paths, api_workflow):
    available = folder_paths.get_filename_list("checkpoints")
    wanted = api_workflow.get(INPUTS["checkpoint"][0], {}).get("inputs", {}).get(INPUTS["checkpoint"][2])
    if wanted in available:
        return wanted
    if not available:
        raise ModelFileError(
            "No SDXL checkpoint found in " + ", ".join(folder_paths.get_folder_paths("checkpoints"))
            + ". Put one there (e.g. sd_xl_base_1.0.safetensors) or name one with --checkpoint.")
    log.info("using checkpoint %s", available[0])
    return available[0]


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


async def _validate(execution, prompt_id, prompt):
    params = list(inspect.signature(execution.validate_prompt).parameters)
    if params and params[0] == "prompt_id":
        args = (prompt_id, prompt, None)[:len(params)]
    else:  # before the prompt id was added: validate_prompt(prompt[, partial_execution_list])
        args = (prompt, None)[:len(params)]
    return await _maybe_await(execution.validate_prompt(*args))


def _executor(execution):
    """Built like ComfyUI's main.py builds it; the cache arguments changed form between releases."""
    params = inspect.signature(execution.PromptExecutor).parameters
    if "cache_args" in params:
        from comfy.cli_args import args

        cache_args = {"lru": getattr(args, "cache_lru", 0), "ram": getattr(args, "cache_ram", 0)}
        return execution.PromptExecutor(_Server(), cache_args=cache_args)
    return execution.PromptExecutor(_Server())


def _validation_message(valid):
    error, node_errors = valid[1] or {}, valid[3] or {}
    lines = [f"ComfyUI rejected the workflow: {error.get('message', '')} {error.get('details', '')}".strip()]
    for node_id, info in node_errors.items():
        for err in info.get("errors", []):
            lines.append(f"  node {node_id} ({info.get('class_type', '?')}): {err.get('message', '')}: "
                         f"{err.get('details', '')}")
    return "\n".join(lines)


def _execution_message(executor):
    for event, data in reversed(executor.status_messages):
        if event == "execution_error":
            return (f"Node {data.get('node_id')} ({data.get('node_type')}) failed: "
                    f"{data.get('exception_message', '').strip()}")
        if event == "execution_interrupted":
            return "The render was interrupted."
    return "ComfyUI reported a failed run without an error message; run with -v for its log."


def _saved_image(folder_paths, executor) -> Path:
    node_id, _ = SAVE_NODE
    outputs = getattr(executor, "history_result", {}).get("outputs", {})
    images = outputs.get(node_id, {}).get("images") or [
        img for out in outputs.values() for img in out.get("images", []) if img.get("type") == "output"]
    if not images:
        raise PulidError("The workflow ran but saved no image (it needs a SaveImage node).")
    first = images[0]
    return Path(folder_paths.get_output_directory(), first.get("subfolder", ""), first["filename"])
