"""Render one image with the pack's basic workflow through ComfyUI's HTTP API.

Either a ComfyUI of the user's is started for the render (its own main.py, as a child process on a
free loopback port, output to a temporary folder, stopped afterwards whatever happens) or one that
is already running is used (`server`). Both then go the same way a browser does: the face photo is
uploaded, workflows/api/pulid_basic.json (filled in by node id) is queued on /prompt, progress
follows the /ws events, and the saved image is downloaded from /view. The image is therefore exactly
what the same workflow gives in the UI, and no ComfyUI internals are touched, so it works unchanged
on every ComfyUI release the pack supports.
"""
import asyncio
import contextlib
import copy
import json
import logging
import sys
import tempfile
import uuid
from pathlib import Path

from pulid.errors import ModelFileError, PulidError

from .comfyui import Client, ServerGone, ServerProcess, combo_options, execution_error_text
from .doctor import check_models, format_table

log = logging.getLogger(__name__)

PACK_DIR = Path(__file__).resolve().parent.parent
BASIC_WORKFLOW = PACK_DIR / "workflows" / "api" / "pulid_basic.json"

# argument -> (node id, class_type, input name) in workflows/api/pulid_basic.json
INPUTS = {
    "checkpoint": ("1", "CheckpointLoaderSimple", "ckpt_name"),
    "pulid_file": ("2", "PuLIDSDXLModelLoader", "pulid_file"),
    "face": ("4", "LoadImage", "image"),
    "weight": ("7", "PuLIDSDXLApply", "weight"),
    "method": ("7", "PuLIDSDXLApply", "method"),
    "prompt": ("10", "CLIPTextEncode", "text"),
    "negative": ("11", "CLIPTextEncode", "text"),
    "width": ("12", "EmptyLatentImage", "width"),
    "height": ("12", "EmptyLatentImage", "height"),
    "seed": ("13", "KSampler", "seed"),
    "steps": ("13", "KSampler", "steps"),
    "cfg": ("13", "KSampler", "cfg"),
}
SAVE_NODE = "15"
PACK_NODE = "PuLIDSDXLApply"
"""A node of this pack: the server lists it in /object_info when it loaded the pack."""

MODEL_FOLDERS = ("checkpoints", "clip", "clip_vision", "configs", "controlnet", "diffusion_models", "embeddings",
                 "facexlib", "insightface", "loras", "pulid", "text_encoders", "unet", "upscale_models", "vae")
"""The folders named in the extra_model_paths.yaml written for --models-dir."""


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


def generate(*, face, prompt, out, comfyui=None, server=None, negative=None, checkpoint=None, pulid_file=None,
             steps=None, cfg=None, seed=None, weight=None, method=None, width=None, height=None,
             models_dir=None, extra_model_paths=None, workflow=None, cpu=False) -> Path:
    """Render one image and write it to `out`; returns the path written.

    comfyui: the ComfyUI folder to start; server: the URL of a running ComfyUI instead.
    """
    if not comfyui and not server:
        raise PulidError("Say which ComfyUI renders: --comfyui <ComfyUI folder> to start one, or "
                         "--server http://127.0.0.1:8188 for one that is running.")
    face = Path(face).expanduser().resolve()
    if not face.is_file():
        raise PulidError(f"Face image not found: {face}.")
    workflow_path = Path(workflow) if workflow else BASIC_WORKFLOW
    with open(workflow_path, encoding="utf-8") as f:
        api_workflow = json.load(f)
    values = dict(pulid_file=pulid_file, weight=weight, method=method, prompt=prompt, checkpoint=checkpoint,
                  negative=negative, width=width, height=height, seed=seed, steps=steps, cfg=cfg)
    out = Path(out).expanduser().resolve()
    if server:
        image = asyncio.run(_render(server, face, api_workflow, values))
    else:
        image = _render_on_own_server(comfyui, face, api_workflow, values, models_dir, extra_model_paths,
                                      cpu)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(image)
    log.info("wrote %s", out)
    return out


def _render_on_own_server(comfyui, face, api_workflow, values, models_dir, extra_model_paths, cpu):
    with own_server(comfyui, models_dir, extra_model_paths, cpu, values.get("pulid_file")) as process:
        try:
            return asyncio.run(_render(process.url, face, api_workflow, values))
        except PulidError:
            log.debug("ComfyUI's log:\n%s", process.log_tail())
            raise


@contextlib.contextmanager
def own_server(comfyui, models_dir=None, extra_model_paths=None, cpu=False, pulid_file=None, prefix="pulid-generate-"):
    """A ComfyUI started from the folder `comfyui` for this command (a `ServerProcess`), stopped on leaving.

    Missing models stop it before it starts; its output and user data live in a temporary folder.
    """
    comfyui = Path(comfyui).expanduser().resolve()
    if not (comfyui / "main.py").is_file() or not (comfyui / "folder_paths.py").is_file():
        raise PulidError(f"{comfyui} is not a ComfyUI folder (no main.py / folder_paths.py); "
                         f"--comfyui must be the folder that holds ComfyUI's main.py.")
    models = Path(models_dir).expanduser().resolve() if models_dir else comfyui / "models"
    if models_dir or not extra_model_paths:
        _require_models(models, pulid_file)
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        scratch = Path(scratch)
        args = _server_args(comfyui, scratch, models if models_dir else None, extra_model_paths, cpu)
        log.info("starting ComfyUI from %s", comfyui)
        with ServerProcess(comfyui, args, scratch / "comfyui.log") as process:
            yield process


def _server_args(comfyui, scratch, models, extra_model_paths, cpu):
    """main.py's flags: everything it writes goes under `scratch`, models from where the user said."""
    for name in ("input", "output", "temp", "user"):
        (scratch / name).mkdir()
    args = ["--output-directory", str(scratch / "output"), "--input-directory", str(scratch / "input"),
            "--temp-directory", str(scratch / "temp"), "--user-directory", str(scratch / "user"),
            "--database-url", f"sqlite:///{scratch / 'comfyui.db'}", "--disable-auto-launch"]
    if cpu or not _has_gpu():
        log.info("no GPU asked for or found: ComfyUI runs on the CPU")
        args.append("--cpu")
    lines = []  # an extra_model_paths.yaml of our own, when needed
    if models is not None:
        lines += ["pulid_generate_models:", f"    base_path: {models}"]
        lines += [f"    {name}: {name}" for name in MODEL_FOLDERS]
    if not _pack_installed_in(comfyui):
        # Run from a clone outside ComfyUI: offer this pack to the server as one more custom node.
        (scratch / "custom_nodes").mkdir()
        (scratch / "custom_nodes" / "pulid_sdxl").symlink_to(PACK_DIR, target_is_directory=True)
        lines += ["pulid_generate_pack:", f"    custom_nodes: {scratch / 'custom_nodes'}"]
    configs = [Path(extra_model_paths).expanduser().resolve()] if extra_model_paths else []
    if lines:
        configs.append(scratch / "extra_model_paths.yaml")
        configs[-1].write_text("\n".join(lines) + "\n", encoding="utf-8")
    for config in configs:
        args += ["--extra-model-paths-config", str(config)]
    return args


def _pack_installed_in(comfyui):
    folder = comfyui / "custom_nodes"
    return folder.is_dir() and any(entry.resolve() == PACK_DIR for entry in folder.iterdir())


def _has_gpu():
    try:
        import torch
    except ImportError:
        return False
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps is not None and mps.is_available())


def _require_models(models: Path, pulid_file):
    """Stop before ComfyUI starts when a model the workflow needs is missing: the doctor's lines."""
    problems = [c for c in check_models(models, load=False) if c.failed]
    if pulid_file:  # another PuLID file was named: the default one may be absent
        problems = [c for c in problems if c.name != "pulid_v1.1.safetensors"]
    if problems:
        raise ModelFileError("Missing model files:\n" + format_table(problems))


async def _render(url, face, api_workflow, values):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        client = Client(url, session, f"pulid-generate-{uuid.uuid4()}")
        await check_server(client)
        if values.get("checkpoint") is None:
            values = dict(values, checkpoint=await _default_checkpoint(client, api_workflow))
        values = dict(values, face=await client.upload_image(face))
        return await run_prompt(client, fill_workflow(api_workflow, values))


async def check_server(client):
    """A PulidError unless a ComfyUI that has loaded this pack answers at the client's URL."""
    import aiohttp

    try:
        info = await client.get_json(f"/object_info/{PACK_NODE}")
    except aiohttp.ClientError as exc:
        raise PulidError(f"No ComfyUI answers at {client.url} ({exc}). Start it, or use --comfyui <folder>.") from None
    if not info:
        raise PulidError(f"The ComfyUI at {client.url} has not loaded PuLID-SDXL (no {PACK_NODE} node). Install "
                         f"the pack into ComfyUI/custom_nodes and restart ComfyUI; its log says why it failed.")


async def run_prompt(client, prompt, *, bar=True, on_queued=None):
    """Queue one filled-in API workflow, follow it to the end and return the saved image's bytes.

    A rejected prompt or a failed node is a PulidError with ComfyUI's message; a closed event stream is
    `ServerGone`. Ctrl-C or an error while it runs interrupts it on the server. `on_queued(prompt_id)` is
    called once the server has accepted it.
    """
    async with client.session.ws_connect(f"{client.url}/ws?clientId={client.client_id}", heartbeat=30) as ws:
        try:
            prompt_id = await client.queue(prompt)
        except ValueError as exc:
            raise PulidError(str(exc)) from None
        if on_queued is not None:
            on_queued(prompt_id)
        try:
            await _follow(ws, prompt_id, bar)
        except BaseException:
            await client.cancel(prompt_id)  # Ctrl-C or an error here: do not leave the render running
            raise
    return await client.download(_saved_image(await _outputs(client, prompt_id)))


async def _outputs(client, prompt_id, timeout=60):
    """The prompt's outputs from /history: the server files them just after announcing success."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        entry = (await client.get_json(f"/history/{prompt_id}")).get(prompt_id)
        if entry is not None:
            return entry.get("outputs", {})
        if asyncio.get_running_loop().time() > deadline:
            raise PulidError(f"ComfyUI finished the render but kept no history of it within {timeout} s.")
        await asyncio.sleep(0.1)


async def _default_checkpoint(client, api_workflow):
    spec = (await client.get_json("/object_info/CheckpointLoaderSimple"))["CheckpointLoaderSimple"]
    available = combo_options(spec["input"]["required"]["ckpt_name"])
    wanted = api_workflow.get(INPUTS["checkpoint"][0], {}).get("inputs", {}).get(INPUTS["checkpoint"][2])
    if wanted in available:
        return wanted
    if not available:
        raise ModelFileError("The ComfyUI that renders lists no checkpoint in models/checkpoints. Put an SDXL "
                             "checkpoint there (e.g. sd_xl_base_1.0.safetensors) or name one with --checkpoint.")
    log.info("using checkpoint %s", available[0])
    return available[0]


async def _follow(ws, prompt_id, show_bar=True):
    """Read the event stream until the prompt ends; a tqdm bar per sampling node on stderr (`show_bar`)."""
    import aiohttp
    from tqdm import tqdm

    bar, bar_node = None, None
    try:
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    raise ServerGone("ComfyUI closed the connection during the render; its log says why.")
                continue  # binary frames are previews
            event = json.loads(message.data)
            kind, data = event.get("type"), event.get("data") or {}
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if kind == "progress" and show_bar:
                if bar is None or bar_node != data.get("node"):
                    if bar is not None:
                        bar.close()
                    bar, bar_node = tqdm(total=data["max"], desc="sampling", unit="step", file=sys.stderr), \
                        data.get("node")
                bar.n = data["value"]
                bar.refresh()
            elif kind == "executing" and data.get("node"):
                log.debug("running node %s", data["node"])
            elif kind == "execution_error":
                raise PulidError(execution_error_text(data))
            elif kind == "execution_interrupted":
                raise PulidError("The render was interrupted in ComfyUI.")
            elif kind == "execution_success" or (kind == "executing" and data.get("node") is None
                                                 and data.get("prompt_id") == prompt_id):
                return
    finally:
        if bar is not None:
            bar.close()
    raise ServerGone("ComfyUI closed the connection during the render; its log says why.")


def _saved_image(outputs):
    images = (outputs.get(SAVE_NODE) or {}).get("images") or [
        img for out in outputs.values() for img in out.get("images", []) if img.get("type") == "output"]
    if not images:
        raise PulidError("The workflow ran but saved no image (it needs a SaveImage node).")
    return images[0]

