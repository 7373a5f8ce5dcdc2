"""Running one prompt on a ComfyUI: queue it, follow its events, fetch the saved image.

The client (`Client`) says nothing of what a render is; this module is the protocol of one: a server that has
loaded this pack, a prompt queued and followed on the /ws stream (a tqdm bar per sampling node), its outputs read
from /history and the saved image downloaded from /view. A closed stream is `ServerGone`; Ctrl-C or an error while
the prompt runs takes it off the server.
"""
import asyncio
import json
import logging
import sys

from pulid.errors import ModelFileError, PulidError

from .client import ServerGone, combo_options, execution_error_text

log = logging.getLogger(__name__)

PACK_NODE = "PuLIDSDXLApply"
"""A node of this pack: the server lists it in /object_info when it loaded the pack."""


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


async def run_prompt(client, prompt, *, bar=True, output_node=None):
    """Queue one filled-in API workflow, follow it to the end and return the saved image's bytes.

    A rejected prompt or a failed node is a PulidError with ComfyUI's message; a closed event stream is
    `ServerGone`. Ctrl-C or an error while it runs interrupts it on the server. `output_node`: the id of the
    node whose image is wanted (default: the first saved image).
    """
    async with client.session.ws_connect(f"{client.url}/ws?clientId={client.client_id}", heartbeat=30) as ws:
        try:
            prompt_id = await client.queue(prompt)
        except ValueError as exc:
            raise PulidError(str(exc)) from None
        try:
            await follow(ws, prompt_id, bar)
        except BaseException:
            await client.cancel(prompt_id)  # Ctrl-C or an error here: do not leave the render running
            raise
    return await client.download(saved_image(await outputs(client, prompt_id), output_node))


async def outputs(client, prompt_id, timeout=60):
    """The prompt's outputs from /history: the server files them just after announcing success."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        entry = (await client.get_json(f"/history/{prompt_id}")).get(prompt_id)
        if entry is not None:
            return entry.get("outputs", {})
        if asyncio.get_running_loop().time() > deadline:
            raise PulidError(f"ComfyUI finished the render but kept no history of it within {timeout} s.")
        await asyncio.sleep(0.1)


async def default_checkpoint(client, wanted=None):
    """`wanted` (the workflow's own checkpoint) when the server has it, else the first checkpoint it lists."""
    spec = (await client.get_json("/object_info/CheckpointLoaderSimple"))["CheckpointLoaderSimple"]
    available = combo_options(spec["input"]["required"]["ckpt_name"])
    if wanted in available:
        return wanted
    if not available:
        raise ModelFileError("The ComfyUI that renders lists no checkpoint in models/checkpoints. Put an SDXL "
                             "checkpoint there (e.g. sd_xl_base_1.0.safetensors) or name one with --checkpoint.")
    log.info("using checkpoint %s", available[0])
    return available[0]


async def follow(ws, prompt_id, show_bar=True):
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


def saved_image(outputs, node=None):
    """The image the output `node` saved (any saved image when it saved none, or no node is named)."""
    images = (outputs.get(node) or {}).get("images") or [
        img for out in outputs.values() for img in out.get("images", []) if img.get("type") == "output"]
    if not images:
        raise PulidError("The workflow ran but saved no image (it needs a SaveImage node).")
    return images[0]

