"""One running ComfyUI over its HTTP API: the calls its own frontend makes, and the messages it answers with.

Nothing of ComfyUI is imported. The endpoints used here (/object_info, /upload/image, /prompt, /queue,
/history, /view, /interrupt and the /ws event stream) have kept their form on every ComfyUI the pack
supports. aiohttp (a ComfyUI requirement) is imported when a request is made, so the command line starts
without it.
"""
import contextlib
import json
import urllib.request
from pathlib import Path

from pulid.errors import PulidError


class ServerGone(PulidError):
    """The server refused or dropped the connection: it is gone (a slow render is not)."""


def combo_options(spec):
    """Options of a combo input in /object_info, old ([options], {...}) or new ("COMBO", {"options": ...}) form."""
    if not isinstance(spec, list) or not spec:
        return []
    if isinstance(spec[0], list):
        return spec[0]
    if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
        return spec[1].get("options") or []
    return []


def get_json(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        raw = r.read()
    return json.loads(raw) if raw.strip() else None


def node_errors_text(response):
    """ComfyUI's answer to a rejected /prompt as lines `Node N (Class): message: details`."""
    error = response.get("error") or {}
    lines = []
    for node_id, info in (response.get("node_errors") or {}).items():
        for err in info.get("errors", []):
            details = f": {err['details']}" if err.get("details") else ""
            lines.append(f"Node {node_id} ({info.get('class_type', '?')}): {err.get('message', '')}{details}")
    if not lines:
        message = error.get("message", "") if isinstance(error, dict) else str(error)
        details = error.get("details", "") if isinstance(error, dict) else ""
        lines.append(f"ComfyUI rejected the workflow: {message} {details}".strip())
    return "\n".join(lines)


def execution_error_text(data):
    """An `execution_error` event as `Node N (Class): message`."""
    return f"Node {data.get('node_id')} ({data.get('node_type')}): {str(data.get('exception_message', '')).strip()}"


class Client:
    """The HTTP API and event stream of one running ComfyUI, over aiohttp (a ComfyUI requirement)."""

    def __init__(self, url, session, client_id):
        self.url = url.rstrip("/")
        self.session = session
        self.client_id = client_id

    async def get_json(self, path):
        async with self.session.get(self.url + path) as r:
            r.raise_for_status()
            return await r.json(content_type=None)

    async def upload_image(self, path, name=None):
        """Put a local image into the server's input folder (as `name`, default its own file name);
        returns the name LoadImage takes."""
        import aiohttp

        form = aiohttp.FormData()
        form.add_field("image", Path(path).read_bytes(), filename=name or Path(path).name)
        form.add_field("overwrite", "true")
        async with self.session.post(self.url + "/upload/image", data=form) as r:
            r.raise_for_status()
            answer = await r.json(content_type=None)
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    async def queue(self, prompt):
        """POST the prompt; returns its prompt id. A rejected prompt raises ValueError(node errors text)."""
        body = {"prompt": prompt, "client_id": self.client_id}
        async with self.session.post(self.url + "/prompt", json=body) as r:
            answer = await r.json(content_type=None)
            if r.status != 200 or answer.get("node_errors"):
                raise ValueError(node_errors_text(answer))
        return answer["prompt_id"]

    async def cancel(self, prompt_id):
        """Take our prompt off the queue, or stop it if it runs; another client's render is left alone."""
        with contextlib.suppress(Exception):
            async with self.session.post(self.url + "/queue", json={"delete": [prompt_id]}):
                pass
            async with self.session.post(self.url + "/interrupt", json={"prompt_id": prompt_id}):
                pass

    async def download(self, image):
        query = {"filename": image["filename"], "subfolder": image.get("subfolder", ""),
                 "type": image.get("type", "output")}
        async with self.session.get(self.url + "/view", params=query) as r:
            r.raise_for_status()
            return await r.read()
