"""Drive a real ComfyUI server and its real frontend in headless Chromium.

Used by test_browser.py (the workflow checks) and tools/screenshots.py (the README pictures).
Everything here is a context manager or a plain function so that the server and the browser are
always stopped, even when a check fails half-way.

Why each piece exists:
- Each ComfyUI release pins its own `comfyui-frontend-package` (and template/doc packages) in its
  requirements.txt, and the old and new hosts pin different ones. A frontend that does not match
  the host proves nothing, so the pins the venv does not satisfy are installed once with
  `pip install --target` into a cache folder that goes first on the server's PYTHONPATH.
  PULID_FRONTEND=<version> replaces the frontend pin: users update the frontend package on its own
  (`pip install -U comfyui-frontend-package`), so a newer one than the host pins is a setup we meet.
- The server gets a throw-away base directory (custom_nodes/ with a symlink to this repo, models/,
  input/, output/, user/) so the host checkout is never written to and runs cannot see each other.
- Model combos are filled by asking the server itself: a probe file is dropped in every model
  folder, /object_info then shows which combo lists which folder, and an empty placeholder with the
  name the workflow uses is put there. Validation then checks the real names without real weights.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pulid_cli.comfyui import ServerProcess, combo_options

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = (
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
)
PACK_NAME = "pulid_sdxl"  # the folder name the pack gets under custom_nodes/
VIEWPORT = {"width": 1600, "height": 1000}

# The frontend's first-run extras (template picker, minimap, update notes) would cover the graph;
# the missing-node and missing-model warnings are forced on because the test watches for them.
FRONTEND_SETTINGS = {
    "Comfy.TutorialCompleted": True,
    "Comfy.Minimap.Visible": False,
    "Comfy.Notification.ShowVersionUpdates": False,
    "Comfy.Workflow.ShowMissingNodesWarning": True,
    "Comfy.Workflow.ShowMissingModelsWarning": True,
    # The coach marks (1.4x on) that open with app mode and a first run would cover the app's Run button.
    "Comfy.OnboardingCoachmarks.Seen": ["appMode", "firstRun"],
    # Pictures: full detail at any zoom, no frame-rate overlay.
    "LiteGraph.Canvas.MinFontSizeForLOD": 1,
    "LiteGraph.Canvas.LowQualityRenderingZoomThreshold": 0.1,
    "Comfy.Graph.CanvasInfo": False,
}

MODEL_SUFFIX = ".safetensors"
PROBE_STEM = "zz_probe__"


# ---------------------------------------------------------------- host packages


def host_pins(comfy_path) -> dict[str, str]:
    """`comfyui-*==X` pins in the host's requirements.txt (frontend, templates, docs)."""
    pins = {}
    for line in (Path(comfy_path) / "requirements.txt").read_text().splitlines():
        m = re.match(r"\s*(comfyui[-_][A-Za-z0-9_.-]+)\s*==\s*([^\s;#]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


FRONTEND_DIST = "comfyui-frontend-package"


def wanted_packages(comfy_path) -> dict[str, str]:
    """The host's pins, with the frontend replaced by PULID_FRONTEND when that is set."""
    pins = host_pins(comfy_path)
    if os.environ.get("PULID_FRONTEND"):
        pins[FRONTEND_DIST] = os.environ["PULID_FRONTEND"]
    return pins


def frontend_wanted(comfy_path) -> str:
    """The frontend version this run is for (PULID_FRONTEND, else the host's pin); "" when there is none."""
    return wanted_packages(comfy_path).get(FRONTEND_DIST, "")


def version_tuple(version) -> tuple:
    """(1, 58, 1) from "1.58.1"; the leading numbers only, so "1.60.0rc1" compares as (1, 60, 0)."""
    return tuple(int(m) for m in re.findall(r"\d+", str(version))[:3])


def _installed_version(python, dist):
    code = ("import importlib.metadata as m, sys\n"
            "try: print(m.version(sys.argv[1]))\n"
            "except m.PackageNotFoundError: print('')\n")
    out = subprocess.run([python, "-c", code, dist], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def host_packages_dir(comfy_path, cache_root, python=sys.executable) -> Path | None:
    """A folder holding the host's pinned frontend packages (PULID_FRONTEND's frontend instead of the pinned
    one when set), or None when the venv already has them.

    Installed once per set of pins (the folder name is a hash of them) and reused afterwards.
    Raises RuntimeError when the pins cannot be installed (no registry access).
    """
    pins = wanted_packages(comfy_path)
    missing = {d: v for d, v in pins.items() if _installed_version(python, d) != v}
    if not missing:
        return None
    key = hashlib.sha256(json.dumps(sorted(missing.items())).encode()).hexdigest()[:12]
    target = Path(cache_root) / f"host-packages-{key}"
    done = target / ".complete"
    if not done.exists():
        shutil.rmtree(target, ignore_errors=True)
        specs = [f"{d}=={v}" for d, v in sorted(missing.items())]
        log.info("installing %s into %s", " ".join(specs), target)
        run = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              "--target", str(target), *specs], capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"could not install the host's pinned packages {specs}:\n{run.stderr[-2000:]}")
        done.write_text("\n".join(specs) + "\n")
    return target


# ---------------------------------------------------------------- workflows


@dataclass
class Workflow:
    """One UI-format workflow file and the API-format copy kept beside it."""

    name: str
    ui_path: Path
    api_path: Path | None
    ui: dict = field(repr=False)
    api: dict | None = field(repr=False)


def is_ui_workflow(data) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def find_workflows(folder) -> list[Workflow]:
    """Every UI-format JSON directly in `folder`, paired with its API copy (api/<name>.json or similar)."""
    folder = Path(folder)
    out = []
    for ui_path in sorted(folder.glob("*.json")):
        ui = json.loads(ui_path.read_text())
        if not is_ui_workflow(ui):
            continue
        stem = ui_path.stem
        candidates = [folder / "api" / ui_path.name, folder / "api" / f"{stem}_api.json",
                      folder / "api" / f"{stem}.api.json", folder / f"{stem}_api.json",
                      folder / f"{stem}.api.json"]
        api_path = next((p for p in candidates if p.is_file()), None)
        api = json.loads(api_path.read_text()) if api_path else None
        out.append(Workflow(stem, ui_path, api_path, ui, api))
    return out


def prompt_core(prompt: dict, info: dict | None = None) -> dict:
    """What the server executes: class_type and inputs per node id (titles are presentation only).

    With `info` (the server's /object_info), inputs the node does not declare are left out: some
    frontends send their display-only widgets (Preview Any's text box), and each version others.
    """
    def declared(node):
        spec = (info or {}).get(node["class_type"], {}).get("input", {})
        names = {name for group in spec.values() if isinstance(group, dict) for name in group}
        return {k: v for k, v in node["inputs"].items() if info is None or k in names}

    return {str(k): {"class_type": v["class_type"], "inputs": declared(v)} for k, v in prompt.items()}


def ui_nodes(ui: dict):
    """All nodes of a UI workflow, including those inside subgraph definitions."""
    yield from ui.get("nodes", [])
    for sub in ui.get("definitions", {}).get("subgraphs", []):
        yield from sub.get("nodes", [])


# ---------------------------------------------------------------- server


class ComfyServer(ServerProcess):
    """`main.py --cpu` from a host checkout, on a free 127.0.0.1 port, in a private base directory."""

    def __init__(self, comfy_path, workdir, *, packages_dir=None, pack_dir=REPO,
                 python=sys.executable, extra_custom_nodes=()):
        super().__init__(comfy_path, (), Path(workdir) / "server.log", python=python)
        self.workdir = Path(workdir)
        self.base = self.workdir / "base"
        self.models = self.base / "models"
        self.input = self.base / "input"
        self.output = self.base / "output"
        self.packages_dir = packages_dir
        self.pack_dir = Path(pack_dir)
        self.extra_custom_nodes = [Path(p) for p in extra_custom_nodes]

    def _layout(self):
        for d in ("custom_nodes", "models", "input", "output", "temp", "user/default/workflows"):
            (self.base / d).mkdir(parents=True, exist_ok=True)
        link = self.base / "custom_nodes" / PACK_NAME
        if self.pack_dir and not link.exists():
            link.symlink_to(self.pack_dir, target_is_directory=True)
        for extra in self.extra_custom_nodes:  # test-only node folders
            target = self.base / "custom_nodes" / extra.name
            if not target.exists():
                target.symlink_to(extra.resolve(), target_is_directory=True)
        settings = self.base / "user" / "default" / "comfy.settings.json"
        settings.write_text(json.dumps(FRONTEND_SETTINGS, indent=1))
        # The same models folder is also named in an extra_model_paths.yaml, the way users with a
        # shared models drive set ComfyUI up, so the pack's folder registration has to merge with it
        # (ComfyUI lists a file found twice once).
        yaml = self.workdir / "extra_model_paths.yaml"
        folders = ["pulid", "clip_vision", "insightface", "facexlib", "checkpoints"]
        yaml.write_text("pulid_browser_test:\n"
                        f"    base_path: {self.models}\n"
                        + "".join(f"    {f}: {f}\n" for f in folders))
        return yaml

    def start(self, timeout=180):
        yaml = self._layout()
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if self.packages_dir:
            env["PYTHONPATH"] = str(self.packages_dir)
        args = ["--cpu", "--base-directory", str(self.base), "--output-directory", str(self.output),
                "--input-directory", str(self.input), "--temp-directory", str(self.base / "temp"),
                "--user-directory", str(self.base / "user"), "--extra-model-paths-config", str(yaml),
                "--database-url", f"sqlite:///{self.base / 'user' / 'comfyui.db'}", "--disable-auto-launch"]
        self.args, self.env = args, env
        return super().start(timeout)

    def log_text(self):
        return self.log_path.read_text(errors="replace")

    # -- HTTP

    def _request(self, path, body=None, timeout=30):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                return r.status, (json.loads(raw) if raw.strip() else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors="replace")

    def get(self, path, timeout=30):
        status, data = self._request(path, timeout=timeout)
        if status != 200:
            raise OSError(f"GET {path}: HTTP {status}: {data}")
        return data

    def post(self, path, body, timeout=60):
        return self._request(path, body, timeout=timeout)

    # -- model and input files

    def folder_of_combos(self) -> dict[tuple[str, str], str]:
        """(node class, input name) -> the models folder (or 'input') whose files that combo lists."""
        folders = [f for f in self.get("/models") if "/" not in f and f != "custom_nodes"]
        for f in folders:
            where = self.models / f
            where.mkdir(parents=True, exist_ok=True)
            (where / f"{PROBE_STEM}{f}{MODEL_SUFFIX}").touch()
        (self.input / f"{PROBE_STEM}input.png").touch()
        info = self.get("/object_info", timeout=120)
        mapping = {}
        for cls, spec in info.items():
            for section in ("required", "optional"):
                for name, val in (spec.get("input", {}).get(section) or {}).items():
                    opts = combo_options(val)
                    for opt in opts:
                        m = re.fullmatch(re.escape(PROBE_STEM) + r"(.+?)(?:\.safetensors|\.png)", str(opt))
                        if m:
                            mapping[(cls, name)] = m.group(1).replace("__", "/")
                            break
        return mapping

    def add_placeholders(self, prompts, mapping, extra_models=()):
        """Create the files the prompts name: empty model files, small real PNGs in input/."""
        made = []
        for prompt in prompts:
            for node in prompt.values():
                for name, value in node["inputs"].items():
                    folder = mapping.get((node["class_type"], name))
                    if folder is None or not isinstance(value, str) or not value:
                        continue
                    made.append(self._placeholder(folder, value))
        for directory, name in extra_models:
            made.append(self._placeholder(directory, name))
        return made

    def _placeholder(self, folder, name):
        if folder == "input":
            path = self.input / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                _write_png(path)
        else:
            path = self.models / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
        return path

    def queue_and_cancel(self, prompt, client_id="pulid-browser-test", timeout=120):
        """POST the prompt for validation, then interrupt and clear it so nothing heavy runs.

        A private client_id keeps the (expected) execution error off the browser's socket.
        Returns (HTTP status, response JSON).
        """
        status, resp = self.post("/prompt", {"prompt": prompt, "client_id": client_id})
        if status == 200:
            self.post("/queue", {"clear": True})
            self.post("/interrupt", {})
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                q = self.get("/queue")
                if not q["queue_running"] and not q["queue_pending"]:
                    break
                self.post("/interrupt", {})
                time.sleep(0.2)
            else:
                raise RuntimeError(f"the queued prompt did not stop within {timeout}s")
        return status, resp


def _write_png(path, size=64):
    from PIL import Image

    Image.new("RGB", (size, size), (200, 160, 140)).save(path)


def model_entries(ui: dict):
    """(directory, name) of each model a workflow declares for the frontend's missing-model check."""
    entries = list(ui.get("models") or [])
    for node in ui_nodes(ui):
        entries += (node.get("properties") or {}).get("models") or []
    return [(e["directory"], e["name"]) for e in entries if e.get("directory") and e.get("name")]


# ---------------------------------------------------------------- browser

_JS_LOAD = """async (graph) => {
  const app = window.app;
  await app.loadGraphData(graph, true, true, null);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return true;
}"""

# What the user sees after loading: node types the frontend does not know (they become red
# placeholder nodes), visible dialogs and their text, and each node's widget values as shown.
_JS_STATE = """() => {
  const app = window.app;
  const LG = window.LiteGraph || (window.comfyAPI && window.comfyAPI.litegraph && window.comfyAPI.litegraph.LiteGraph);
  const registered = (LG && LG.registered_node_types) || {};
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length)
      && getComputedStyle(el).visibility !== 'hidden' && getComputedStyle(el).display !== 'none';
  // Warnings open as modal dialogs up to frontend 1.3x and as notification cards ([role=status]) later.
  const dialogs = [...document.querySelectorAll(
      '.p-dialog, .comfy-modal, [role=dialog], [role=alertdialog], [role=alert], [role=status]')]
      .filter(visible).map(el => el.innerText.trim().slice(0, 500)).filter(text => text);
  const nodes = [];
  const visit = (graph) => {
    for (const n of graph._nodes || graph.nodes || []) {
      nodes.push({
        id: String(n.id), type: n.type, title: n.title, known: !!registered[n.type], has_errors: !!n.has_errors,
        pos: [n.pos[0], n.pos[1]], size: [n.size[0], n.size[1]],
        widgets: (n.widgets || []).filter(w => w.serialize !== false)
            .map(w => ({name: w.name, label: w.label || null, type: w.type || null,
                        value: w.value === undefined ? null : w.value})),
      });
      if (n.subgraph) visit(n.subgraph);
    }
  };
  visit(app.graph);
  const r = app.graph.reroutes;
  const reroutes = r ? (r.size ?? r.length ?? Object.keys(r).length) : 0;
  return {dialogs, nodes, reroutes};
}"""

_JS_PROMPT = """async () => {
  const p = await window.app.graphToPrompt();
  return JSON.parse(JSON.stringify(p.output));
}"""

_JS_FIT = """async () => {
  const app = window.app;
  const cmd = app.extensionManager && app.extensionManager.command;
  if (cmd) await cmd.execute('Comfy.Canvas.FitView');
  else app.canvas.ds.reset();
  // Newer frontends animate the fit: wait until the view stops moving.
  const frame = () => new Promise(r => requestAnimationFrame(r));
  let last = '', still = 0;
  for (let i = 0; i < 300 && still < 5; i++) {
    await frame();
    const now = JSON.stringify([...app.canvas.ds.offset, app.canvas.ds.scale]);
    still = now === last ? still + 1 : 0;
    last = now;
  }
  app.canvas.setDirty(true, true);
  await frame();
  // The graph's box on screen (nodes, groups and reroutes), to crop the picture to it.
  const rects = [];
  for (const n of app.graph._nodes || []) rects.push(n.getBounding ? n.getBounding() : n.boundingRect);
  for (const g of app.graph._groups || app.graph.groups || []) rects.push(g._bounding || g.boundingRect);
  const reroutes = app.graph.reroutes;
  for (const r of (reroutes && reroutes.values ? reroutes.values() : [])) {
    rects.push([r.pos[0] - 10, r.pos[1] - 10, 20, 20]);  // a reroute's dot, radius 10
  }
  const ds = app.canvas.ds;
  const box = app.canvas.canvas.getBoundingClientRect();
  const xs = [], ys = [];
  for (const r of rects.filter(Boolean)) {
    xs.push((r[0] + ds.offset[0]) * ds.scale, (r[0] + r[2] + ds.offset[0]) * ds.scale);
    ys.push((r[1] + ds.offset[1]) * ds.scale, (r[1] + r[3] + ds.offset[1]) * ds.scale);
  }
  if (!xs.length) return null;
  return {x: box.left + Math.min(...xs), y: box.top + Math.min(...ys),
          width: Math.max(...xs) - Math.min(...xs), height: Math.max(...ys) - Math.min(...ys)};
}"""

# A fresh node of one type, alone on the canvas; returns the page position of its title bar.
_JS_SELECT_NEW = """async (type) => {
  const app = window.app;
  app.graph.clear();
  const node = window.LiteGraph.createNode(type);
  node.pos = [200, 200];  // before add: with Nodes 2.0 (1.35) the layout store reads it only then
  app.graph.add(node);
  app.canvas.ds.offset = [0, 0];
  app.canvas.ds.scale = 1;
  app.canvas.setDirty(true, true);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  // Where its title bar is on the page: the caller clicks there, as a user selects a node.
  const box = app.canvas.canvas.getBoundingClientRect();
  return {x: box.left + node.pos[0] + 60, y: box.top + node.pos[1] - 15};
}"""

_JS_SELECTED = """() => {
  const c = window.app.canvas;
  return c.selectedItems ? c.selectedItems.size : Object.keys(c.selected_nodes || {}).length;
}"""

_JS_VERSION = """() => window.__COMFYUI_FRONTEND_VERSION__ || null"""

APP_MODE_SINCE = (1, 49)  # the first frontend a host pins (ComfyUI 0.33.0) with app mode read from linearData
# The Run button of an app's form (1.49, 1.58): the button with the run icon, beside the run count's steppers.
APP_RUN_BUTTON = '[data-testid="linear-run-button"] button:has([data-testid="linear-run-button-icon"])'

NODES2_SETTING = "Comfy.VueNodes.Enabled"  # "Modern Node Design (Nodes 2.0)" in the settings dialog
NODES2_SINCE = (1, 32)  # the first frontend that offers Nodes 2.0 to users (1.27 to 1.31 hide it)
# Up to 1.42.3 (and 1.41.20) switching Nodes 2.0 on scales the whole saved layout by about 1.2, so nodes
# open past the window's edge whatever the file says; 1.42.15 (and 1.41.21) keep the saved positions.
# Measured over ComfyUI 0.8.0 on 1.35.9, 1.38.14, 1.40.10, 1.41.0/.10/.16/.19/.20/.21, 1.42.3/.15.
NODES2_KEEPS_LAYOUT = (1, 42, 15)

# With Nodes 2.0 each node is a DOM element (data-node-id) and the canvas draws only links: what the user
# sees is read from those elements. A widget row is a [data-testid=node-widget] (1.4x on) or, before that
# test id, the outermost element carrying node-id; its label is the first line of text it shows (the number
# and text fields keep their values out of innerText). Per row: the label and every value it shows (text
# and number fields, the picked option of a combo or an image list, a switch's state, its text lines).
_JS_NODES2 = """() => [...document.querySelectorAll('[data-node-id]')].map(el => {
  const r = el.getBoundingClientRect();
  const title = el.querySelector('[data-testid="node-title"]');
  let rows = [...el.querySelectorAll('[data-testid="node-widget"]')];
  if (!rows.length) rows = [...el.querySelectorAll('[node-id]')].filter(w => !w.parentElement.closest('[node-id]'));
  const widgets = rows.map(w => {
    const lines = w.innerText.split('\\n').map(l => l.trim()).filter(l => l);
    const shown = [];
    for (const i of w.querySelectorAll('input:not([type=file]), textarea')) shown.push(i.value);
    for (const s of w.querySelectorAll('[role=switch], [role=checkbox]')) shown.push(s.getAttribute('aria-checked'));
    return {label: lines.length ? lines[0] : null, shown: shown.concat(lines)};
  });
  return {id: el.getAttribute('data-node-id'), box: [r.x, r.y, r.width, r.height],
          title: title ? title.innerText.trim() : null, widgets};
})"""


JOB_BANNER = re.compile(r"^(?:\d+ )?jobs? (?:failed|completed|added to queue)$|^Job queu(?:ed|eing)", re.I)
"""The queue overlay's banners (frontend ≥ 1.4x): about jobs on the server, e.g. one queue_and_cancel stopped
mid-run (whether it started before the interrupt is a race), never about the workflow being loaded."""


@dataclass
class LoadReport:
    dialogs: list
    nodes: list
    console_errors: list
    reroutes: int = 0


class Frontend:
    """One Chromium page on the server's UI, with console errors recorded."""

    def __init__(self, url, executable=CHROMIUM):
        self.url = url
        self.executable = executable
        self.errors = []
        self._pw = self._browser = self.page = None

    def __enter__(self):
        from playwright.sync_api import sync_playwright

        try:
            self._pw = sync_playwright().start()
            self._browser = self._pw.chromium.launch(executable_path=self.executable, headless=True,
                                                     args=list(CHROMIUM_FLAGS))
            self.page = self._browser.new_page(viewport=VIEWPORT)
            self.page.on("console", self._on_console)
            self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
            # Only the local server is reachable; an outside request would just hang or fail.
            self.page.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]).*"), lambda r: r.abort())
            self.page.goto(self.url)
            self.page.wait_for_function(
                "() => window.app && window.app.graph && window.app.canvas && window.app.extensionManager",
                timeout=120_000)
            self.page.wait_for_load_state("networkidle", timeout=60_000)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._browser:
            with contextlib.suppress(Exception):
                self._browser.close()
        if self._pw:
            with contextlib.suppress(Exception):
                self._pw.stop()
        self._browser = self._pw = None

    def _on_console(self, msg):
        if msg.type == "error":
            loc = msg.location or {}
            self.errors.append(f"console error: {msg.text} ({loc.get('url', '')})")

    @property
    def version(self):
        return self.page.evaluate(_JS_VERSION)

    def load(self, ui: dict) -> LoadReport:
        """Load a UI workflow like a user opening the file; report what the page then shows.

        Console errors count from this call on: those while the page boots belong to the host and
        its first run (no user.css yet, no workflows folder, an outside update check) and show on
        an empty graph too.
        """
        self.errors.clear()
        self.page.evaluate(_JS_LOAD, ui)
        self.page.wait_for_load_state("networkidle", timeout=60_000)
        self.page.wait_for_timeout(300)  # dialogs open on the next tick
        state = self.page.evaluate(_JS_STATE)
        dialogs = [text for text in state["dialogs"] if not JOB_BANNER.match(text)]
        return LoadReport(dialogs, state["nodes"], list(self.errors), state["reroutes"])

    def to_prompt(self) -> dict:
        return self.page.evaluate(_JS_PROMPT)

    def help_page(self, node_type, timeout=30_000) -> str:
        """What the frontend's node help shows for `node_type`, opened as a user does: one node of that type on
        an empty canvas, selected, then the info button of the selection toolbox (frontend 1.2x opens the node
        library's help page, 1.4x and 1.5x the right side panel's Info tab). All of them show it in a
        `.node-help-content` box: the rendered web/docs page, or a fallback built from the node's description
        and input tooltips when the page is missing; the caller tells the two apart by the page's own text."""
        title = self.page.evaluate(_JS_SELECT_NEW, node_type)
        self._select(title)
        self.page.locator('[data-testid="info-button"]').first.click(timeout=timeout)
        # The box first holds a spinner while the page loads; these are the markdown and fallback blocks of
        # 1.27 to 1.49 (.markdown-content, .fallback-content) and of 1.5x (.comfy-markdown-content, both).
        blocks = ".markdown-content, .fallback-content, .comfy-markdown-content"
        self.page.locator(f".node-help-content :is({blocks})").first.wait_for(timeout=timeout)
        self.page.wait_for_timeout(300)
        return self.page.locator(".node-help-content").first.inner_text()

    def _select(self, title):
        """Select the one node on the canvas as a user does: press on its title bar, a DOM element with
        Nodes 2.0 and a spot on the canvas otherwise (the page's first press after a load only focuses the
        canvas, so press until the node is selected)."""
        for _ in range(3):
            dom_title = self.page.locator('[data-node-id] [data-testid="node-title"]')
            if dom_title.count():
                dom_title.first.click()
            else:
                self.page.mouse.move(title["x"], title["y"])
                self.page.mouse.down()
                self.page.wait_for_timeout(100)
                self.page.mouse.up()
            self.page.wait_for_timeout(300)
            if self.page.evaluate(_JS_SELECTED) == 1:
                return
        raise AssertionError("could not select the node by pressing on its title")

    # -- Nodes 2.0

    def set_nodes2(self, on: bool):
        """Switch Nodes 2.0 on or off, as its toggle in the settings dialog does (no reload needed)."""
        self.page.evaluate("([k, v]) => window.app.extensionManager.setting.set(k, v)", [NODES2_SETTING, on])
        self.page.wait_for_timeout(300)

    def nodes2_shown(self, count, timeout=30_000) -> list:
        """The DOM nodes of the loaded graph once `count` of them are there: id, box on the page, title and
        widgets (label and shown values), from what the page shows, not from the graph's data."""
        self.page.wait_for_function("(n) => document.querySelectorAll('[data-node-id]').length >= n", arg=count,
                                    timeout=timeout)
        self.page.wait_for_timeout(300)  # widgets fill in on the next frames
        return self.page.evaluate(_JS_NODES2)

    # -- app mode (frontend 1.49 on)

    def app_mode(self, on: bool, timeout=30_000) -> list:
        """Switch the loaded workflow to its app (or back to the graph) with the app-mode toggle's command;
        return the app's inputs as shown: for each, its label and the widget key the frontend gives it."""
        if self.in_app_mode() != on:
            self.page.evaluate("() => window.app.extensionManager.command.execute('Comfy.ToggleLinear')")
        self.page.wait_for_function("(on) => !!document.querySelector('[data-testid=\"linear-widgets\"]') === on",
                                    arg=on, timeout=timeout)
        self.page.wait_for_timeout(300)
        return self.page.evaluate("""() => [...document.querySelectorAll('[data-testid="app-mode-widget-item"]')]
            .map(el => ({label: el.querySelector('[data-testid="builder-widget-label"]').innerText.trim(),
                         key: el.getAttribute('data-widget-key')}))""")

    def in_app_mode(self) -> bool:
        """Whether the page shows an app's form (its inputs and Run button) instead of the graph."""
        return self.page.evaluate("() => !!document.querySelector('[data-testid=\"linear-widgets\"]')")

    def queue_from_run_button(self, server, timeout=30_000, button='[data-testid="queue-button"]'):
        """Press the Run button as a user does; return (prompt the frontend sent, HTTP status, response).
        `button`: the graph's Run button (the default) or an app's (APP_RUN_BUTTON).

        The POST is validated by the server for real but through `server.queue_and_cancel` (a private
        client id, then the queue cleared), and its answer goes back to the page: nothing runs, so no
        execution error of the placeholder models reaches the page's later checks. The "Job queued" banner
        the page then shows (1.4x on; it has no close button) is waited out, or the next load would count it
        as a dialog.
        """
        sent = {}

        def handle(route, request):
            if request.method != "POST":
                return route.continue_()
            sent["prompt"] = request.post_data_json["prompt"]
            sent["status"], sent["response"] = server.queue_and_cancel(sent["prompt"])
            route.fulfill(status=sent["status"], content_type="application/json", body=json.dumps(sent["response"]))

        self.page.route("**/prompt", handle)
        try:
            self.page.locator(button).first.click(timeout=timeout)
            deadline = time.monotonic() + timeout / 1000
            while "response" not in sent and time.monotonic() < deadline:
                self.page.wait_for_timeout(100)
        finally:
            self.page.unroute("**/prompt", handle)
        if "response" not in sent:
            raise AssertionError("pressing Run sent no prompt to the server")
        banner = self.page.locator('[data-testid="queue-notification-banner"]')
        with contextlib.suppress(Exception):  # frontends without the banner
            banner.first.wait_for(state="visible", timeout=3_000)
        banner.first.wait_for(state="hidden", timeout=timeout)
        return sent["prompt"], sent["status"], sent["response"]

    def set_widgets(self, values: dict):
        """Set widget values on the loaded graph as a user's edit does: {node id: {widget name: value}}."""
        missing = self.page.evaluate("""(values) => {
            const missing = [];
            for (const [id, widgets] of Object.entries(values)) {
                const node = window.app.graph.getNodeById(Number(id));
                for (const [name, value] of Object.entries(widgets)) {
                    const widget = node && (node.widgets || []).find(w => w.name === name);
                    if (!widget) { missing.push(`#${id} ${name}`); continue; }
                    widget.value = value;
                    widget.callback?.(value);
                }
            }
            window.app.graph.setDirtyCanvas(true, true);
            return missing;
        }""", values)
        assert not missing, f"no such widget in the loaded graph: {missing}"

    def run_app(self, server, timeout=300_000):
        """Press the app's Run button and let the prompt run for real; return (prompt sent, prompt id, the
        server's outputs for it, the src of every image the app's outputs show once the run is done)."""
        with self.page.expect_response(lambda r: r.url.endswith("/prompt") and r.request.method == "POST",
                                       timeout=30_000) as answer:
            self.page.locator(APP_RUN_BUTTON).first.click(timeout=30_000)
        response = answer.value
        assert response.status == 200, f"/prompt answered {response.status}: {response.text()[:2000]}"
        prompt, prompt_id = response.request.post_data_json["prompt"], response.json()["prompt_id"]
        deadline = time.monotonic() + timeout / 1000
        while True:
            entry = server.get(f"/history/{prompt_id}").get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None:
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"the app's run did not end within {timeout / 1000:.0f} s")
            self.page.wait_for_timeout(500)
        assert entry["status"]["status_str"] == "success", entry["status"]
        shown = self.page.locator('[data-testid="linear-image-output"]')
        with contextlib.suppress(Exception):
            shown.first.wait_for(state="attached", timeout=30_000)
        return prompt, prompt_id, entry["outputs"], [shown.nth(i).get_attribute("src") for i in range(shown.count())]

    def display_names(self, node_types, locale) -> list:
        """The titles new nodes of `node_types` get when the frontend's language is `locale` (a page reload
        applies the setting, as the settings dialog does); the language is set back to English after."""
        try:
            self._set_locale(locale)
            return self.titles(node_types)
        finally:
            self._set_locale("en")

    def titles(self, node_types) -> list:
        """The titles new nodes of `node_types` get in the frontend's current language."""
        return self.page.evaluate("(types) => types.map(t => window.LiteGraph.createNode(t).title)",
                                  list(node_types))

    def _set_locale(self, locale):
        self.page.evaluate("(l) => window.app.extensionManager.setting.set('Comfy.Locale', l)", locale)
        self.page.reload()
        self.page.wait_for_function("() => window.app && window.app.graph && window.LiteGraph", timeout=120_000)
        self.page.wait_for_load_state("networkidle", timeout=60_000)

    def close_dialogs(self):
        for _ in range(3):
            self.page.keyboard.press("Escape")
        self.page.wait_for_timeout(100)

    def _focus_mode(self):
        """Toggle the frontend's focus mode (no menus, tabs, side bars or notification cards)."""
        self.page.evaluate("""async () => {
            try { await window.app.extensionManager.command.execute('Workspace.ToggleFocusMode'); }
            catch (e) { console.warn('no focus mode in this frontend', e); }
        }""")
        self.page.wait_for_timeout(100)

    def screenshot(self, path, colors=128, margin=16):
        """The fitted graph, dialogs closed, saved as a palette PNG (small enough for the README)."""
        from PIL import Image

        self.close_dialogs()
        # Focus mode hides menus, tabs and side bars: the picture shows the graph only. It also hides the
        # newer frontends' warning cards, so it is on only while the picture is taken.
        self._focus_mode()
        try:
            graph_box = self.page.evaluate(_JS_FIT)
            self.page.wait_for_timeout(200)
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            raw = path.with_suffix(".raw.png")
            clip = None
            if graph_box:
                x0, y0 = max(0, graph_box["x"] - margin), max(0, graph_box["y"] - margin)
                x1 = min(VIEWPORT["width"], graph_box["x"] + graph_box["width"] + margin)
                y1 = min(VIEWPORT["height"], graph_box["y"] + graph_box["height"] + margin)
                clip = {"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0}
            self.page.screenshot(path=str(raw), clip=clip)
        finally:
            self._focus_mode()
        with Image.open(raw) as im:
            im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        raw.unlink()
        return path
