"""Render one image with the pack's basic workflow through ComfyUI's HTTP API.

Either a ComfyUI of the user's is started for the render (its own main.py, as a child process on a
free loopback port, output to a temporary folder, stopped afterwards whatever happens) or one that
is already running is used (`server`). Both then go the same way a browser does: the face photo is
uploaded, workflows/api/pulid_basic.json (filled in through its input map) is queued on /prompt, progress
follows the /ws events, and the saved image is downloaded from /view. The image is therefore exactly
what the same workflow gives in the UI, and no ComfyUI internals are touched, so it works unchanged
on every ComfyUI release the pack supports.
"""
import asyncio
import json
import logging
import uuid
from pathlib import Path

from pulid.errors import PulidError

from .comfyui import Client, InputMap, check_server, default_checkpoint, own_server, run_prompt

log = logging.getLogger(__name__)

BASIC = "pulid_basic"
"""The shipped workflow `generate` and `sweep` render (workflows/api/pulid_basic.json)."""


def basic_inputs(workflow=None) -> InputMap:
    """The input map of `workflow` when one sits beside it, else pulid_basic's (a copy that keeps its node ids)."""
    if workflow is not None:
        try:
            return InputMap.of(workflow)
        except PulidError:
            log.debug("no input map beside %s: using %s's", workflow, BASIC)
    basic = InputMap.shipped(BASIC)
    return basic if workflow is None else InputMap(Path(workflow), basic.inputs, basic.outputs)


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
    inputs = basic_inputs(workflow)
    with open(inputs.workflow, encoding="utf-8") as f:
        api_workflow = json.load(f)
    values = dict(pulid_file=pulid_file, weight=weight, method=method, prompt=prompt, checkpoint=checkpoint,
                  negative=negative, width=width, height=height, seed=seed, steps=steps, cfg=cfg)
    out = Path(out).expanduser().resolve()
    if server:
        image = asyncio.run(_render(server, face, api_workflow, inputs, values))
    else:
        with own_server(comfyui, models_dir, extra_model_paths, cpu, pulid_file) as process:
            try:
                image = asyncio.run(_render(process.url, face, api_workflow, inputs, values))
            except PulidError:
                log.debug("ComfyUI's log:\n%s", process.log_tail())
                raise
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(image)
    log.info("wrote %s", out)
    return out


async def _render(url, face, api_workflow, inputs, values):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        client = Client(url, session, f"pulid-generate-{uuid.uuid4()}")
        await check_server(client)
        if values.get("checkpoint") is None:
            values = dict(values, checkpoint=await default_checkpoint(client, inputs.value(api_workflow,
                                                                                            "checkpoint")))
        values = dict(values, face=await client.upload_image(face))
        return await run_prompt(client, inputs.fill(api_workflow, values), output_node=inputs.outputs["image"].node)
