"""Render a grid (faces x prompts x weights x methods x seeds) through ComfyUI's HTTP API and score it.

Each image is the pack's basic workflow (workflows/api/pulid_basic.json) queued on a ComfyUI, the way
`generate` does it (the same client, `run_prompt`). The baseline of a prompt x seed (weight 0) does not
depend on the face, so it is rendered once. The jobs are spread over one or more servers: each server
gets at most `per_server` jobs at a time, a job goes to whichever server has room, and a server that
refuses or drops the connection is gone: its unfinished jobs go back to the others. A slow render is
never taken for a dead server (there is no time limit on a render).

Everything lands in one output folder: images/, scores.csv, contact_sheet.png, tradeoff.png and
sweep.json, the manifest of the settings every image shares (checkpoint, steps, cfg, size, negative
prompt, sha256 of the PuLID and EVA-CLIP files). Running the same command again renders only what is
missing; the grid may grow (more faces, prompts, weights, methods, seeds), other settings are refused.
Every file is written to a temporary name and renamed, so Ctrl-C never leaves half a file.

The scores are computed on this machine with the library (pulid.similarity, pulid.tradeoff), from the
model files in --models-dir: the same files the servers load.
"""
import asyncio
import collections
import contextlib
import csv
import hashlib
import io
import json
import logging
import math
import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from pulid.catalog import EVA_CLIP, PULID_V1_1
from pulid.errors import FaceNotFoundError, PulidError

from .comfyui import ServerGone

log = logging.getLogger(__name__)

DEFAULT_PROMPTS = Path(__file__).resolve().parent / "sweep_prompts.txt"
MANIFEST = "sweep.json"
SCORES = "scores.csv"
CONTACT_SHEET = "contact_sheet.png"
CHART = "tradeoff.png"
IMAGES = "images"
FORMAT = "pulid-sweep 1"
PER_SERVER = 2
"""Jobs in flight per server: one rendering, one waiting in its queue (a faster server takes more)."""
DEFAULT_WEIGHTS = (0.6, 0.8, 1.0)
DEFAULT_METHODS = ("fidelity",)
DEFAULT_SEEDS = (1, 2)
SETTINGS = ("checkpoint", "pulid_file", "steps", "cfg", "width", "height", "negative")
"""The settings every image of a sweep shares (besides the model hashes), by their flag names."""
COLUMNS = ("file", "kind", "face", "prompt", "weight", "method", "seed", "checkpoint", "pulid_file", "steps", "cfg",
           "width", "height", "likeness", "prompt_adherence", "preservation", "note")


# ---------------------------------------------------------------------------------- the grid
def read_prompts(path) -> list[str]:
    """One prompt per line; blank lines and lines starting with # are skipped, duplicates kept once."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PulidError(f"Prompt file not found: {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PulidError(f"Cannot read the prompt file {path}: {exc}.") from None
    prompts = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line not in prompts:
            prompts.append(line)
    if not prompts:
        raise PulidError(f"The prompt file {path} has no prompts: write one prompt per line "
                         f"(blank lines and lines starting with # are skipped).")
    return prompts


def face_ids(paths) -> dict:
    """{id: path} for the face photos; the id (the file name without its suffix) names their images."""
    faces = {}
    for path in paths:
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise PulidError(f"Face image not found: {path}.")
        face_id = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-") or "face"
        if face_id in faces and faces[face_id] != path:
            raise PulidError(f"Two face photos are both called {face_id!r} ({faces[face_id]} and {path}); "
                             f"their images would share names. Rename one.")
        faces[face_id] = path
    if not faces:
        raise PulidError("Name at least one face photo with --face.")
    return faces


def prompt_key(prompt: str) -> str:
    """A short stable name for a prompt (its file names do not change when the prompt file is reordered)."""
    return "p" + hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:8]


def format_weight(weight: float) -> str:
    return f"{weight:g}"


@dataclass(frozen=True)
class Job:
    """One image of the grid. face None: the baseline of its prompt x seed (weight 0, rendered once)."""

    prompt: str
    seed: int
    face: str | None = None
    weight: float = 0.0
    method: str | None = None

    @property
    def baseline(self) -> bool:
        return self.face is None

    @property
    def kind(self) -> str:
        return "baseline" if self.baseline else "pulid"

    @property
    def name(self) -> str:
        """The image's file name in images/."""
        if self.baseline:
            return f"baseline_{prompt_key(self.prompt)}_s{self.seed}.png"
        return f"{self.face}_{prompt_key(self.prompt)}_{self.method}_w{format_weight(self.weight)}_s{self.seed}.png"

    @property
    def baseline_job(self) -> "Job":
        return Job(self.prompt, self.seed)


def plan_jobs(faces, prompts, weights, methods, seeds) -> list[Job]:
    """Baselines first (one per prompt x seed), then every face x method x weight of each prompt x seed."""
    jobs = [Job(p, s) for p in prompts for s in seeds]
    jobs += [Job(p, s, f, w, m) for p in prompts for s in seeds for f in faces for m in methods for w in weights]
    seen = set()
    return [j for j in jobs if not (j in seen or seen.add(j))]


def parse_list(text, kind, what):
    """'0.6,0.8, 1' -> [0.6, 0.8, 1.0] (kind float/int/str); a clear error naming the flag."""
    values = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = kind(item)
        except ValueError:
            raise PulidError(f"{what}: {item!r} is not a{'n integer' if kind is int else ' number'}.") from None
        if value not in values:
            values.append(value)
    if not values:
        raise PulidError(f"{what} is empty.")
    return values


# ---------------------------------------------------------------------------------- the manifest
def file_sha256(path, cache_file=None) -> str:
    """sha256 of a file, remembered in `cache_file` (JSON) by path, size and mtime so a re-run does not re-read it."""
    path = Path(path).resolve()
    stat = path.stat()
    key, stamp = str(path), [stat.st_size, stat.st_mtime_ns]
    cache = {}
    if cache_file is not None:
        with contextlib.suppress(OSError, ValueError):
            cache = json.loads(Path(cache_file).read_text(encoding="utf-8"))
        entry = cache.get(key)
        if isinstance(entry, dict) and entry.get("stamp") == stamp:
            return entry["sha256"]
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    sha = digest.hexdigest()
    if cache_file is not None:
        cache[key] = {"stamp": stamp, "sha256": sha}
        with contextlib.suppress(OSError):
            Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
            write_atomic(cache_file, json.dumps(cache, indent=1).encode("utf-8"))
    return sha


def hash_cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "pulid_sdxl" / "sha256.json"


def new_manifest(settings: dict, faces: dict, prompts, weights, methods, seeds) -> dict:
    return {"format": FORMAT, "settings": dict(settings),
            "grid": {"faces": {k: {"path": str(v["path"]), "sha256": v["sha256"]} for k, v in faces.items()},
                     "prompts": list(prompts), "weights": list(weights), "methods": list(methods),
                     "seeds": list(seeds)}}


def setting_differences(old: dict, new: dict) -> list[str]:
    """'steps: 30 in this sweep, 20 now' for each fixed setting that differs (models: by file)."""
    diffs = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if key == "models" and isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"{name}: sha256 {str(a.get(name))[:12]} in this sweep, {str(b.get(name))[:12]} now "
                      f"(another file)" for name in sorted(set(a) | set(b)) if a.get(name) != b.get(name)]
        elif a != b:
            diffs.append(f"{key}: {a!r} in this sweep, {b!r} now")
    return diffs


def merge_manifest(old: dict | None, new: dict, where="the output folder") -> dict:
    """The manifest of the sweep after this run: the old grid grown by the new one.

    Another setting (or another photo under a face's name) is a PulidError naming the difference.
    """
    if old is None:
        return new
    if old.get("format") != FORMAT:
        raise PulidError(f"{where} holds a {MANIFEST} this version does not read ({old.get('format')!r}); "
                         f"use another --out.")
    diffs = setting_differences(old.get("settings", {}), new["settings"])
    old_faces, new_faces = old["grid"].get("faces", {}), new["grid"]["faces"]
    diffs += [f"face {name!r}: another photo than the one this sweep rendered ({old_faces[name]['path']})"
              for name in new_faces if name in old_faces and old_faces[name]["sha256"] != new_faces[name]["sha256"]]
    if diffs:
        raise PulidError(f"{where} holds a sweep with other settings: " + "; ".join(diffs)
                         + ". Use the same settings to grow that sweep, or another --out for a new one.")
    grid = {}
    for key in ("prompts", "weights", "methods", "seeds"):
        grid[key] = list(old["grid"].get(key, [])) + [v for v in new["grid"][key] if v not in old["grid"].get(key, [])]
    grid["faces"] = dict(old_faces, **new_faces)
    return {"format": FORMAT, "settings": old["settings"], "grid": grid}


def read_manifest(folder) -> dict | None:
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PulidError(f"Cannot read {path} ({exc}); move it away to start a new sweep there.") from None


def write_atomic(path, data: bytes):
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# ---------------------------------------------------------------------------------- scheduling
async def run_jobs(jobs, servers, render, on_done, *, per_server=PER_SERVER):
    """Render `jobs` on `servers` (names): `await render(server, job) -> result`, then `await on_done(job, result)`.

    Each server has at most `per_server` jobs in flight and takes the next pending job as soon as one of
    its slots is free. `render` raising ServerGone means the server is gone: the job, and the others in
    flight there, go back to the pending jobs for the servers that remain (logged). Any other error stops
    the run (the jobs in flight are cancelled). Every server gone with jobs left: PulidError.
    """
    pending = collections.deque(jobs)
    state = {"busy": 0}
    dead = {}
    cond = asyncio.Condition()
    rendering = {}  # task -> server, while the task waits on `render`: what a dead server's siblings cancel

    async def give_back(job):
        async with cond:
            pending.appendleft(job)
            state["busy"] -= 1
            cond.notify_all()

    async def mark_dead(server, exc):
        async with cond:
            if server in dead:
                return
            dead[server] = exc
            left = [s for s in servers if s not in dead]
            log.warning("server %s is gone (%s): its jobs go to %s", server, exc,
                        ", ".join(left) if left else "no other server")
            cond.notify_all()
        for task, where in list(rendering.items()):
            if where == server and task is not asyncio.current_task():
                task.cancel()

    async def worker(server):
        while True:
            async with cond:
                await cond.wait_for(lambda: pending or state["busy"] == 0 or server in dead)
                if server in dead or not pending:
                    return
                job = pending.popleft()
                state["busy"] += 1
            rendering[asyncio.current_task()] = server
            try:
                result = await render(server, job)
            except ServerGone as exc:
                del rendering[asyncio.current_task()]
                await give_back(job)
                await mark_dead(server, exc)
                return
            except asyncio.CancelledError:
                del rendering[asyncio.current_task()]
                if server in dead:  # a sibling found the server gone: this job moves too
                    await give_back(job)
                    return
                raise
            del rendering[asyncio.current_task()]
            try:
                await on_done(job, result)
            finally:
                async with cond:
                    state["busy"] -= 1
                    cond.notify_all()

    # gather, not asyncio.TaskGroup (Python 3.11+; the pack supports 3.10): the first real error (a PulidError...)
    # propagates as it is, and every other worker is cancelled and awaited, on an error or on Ctrl-C alike.
    workers = [asyncio.ensure_future(worker(server)) for server in servers for _ in range(max(1, per_server))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    if pending:
        raise PulidError(f"Every server is gone ({'; '.join(f'{s}: {e}' for s, e in dead.items())}); "
                         f"{len(pending)} image(s) not rendered. Run the same command again once a server is up: "
                         f"it renders only what is missing.")


class ComfyRenderer:
    """Renders jobs on ComfyUI servers over their HTTP API (`generate`'s client), uploads faces once per server."""

    def __init__(self, session, workflow, values, faces):
        self.session = session
        self.workflow = workflow
        self.values = values  # the fixed settings, by generate's argument names
        self.faces = faces  # id -> path
        self.uploads = {}  # (server, face id) -> the name LoadImage takes there
        self.lock = asyncio.Lock()

    def client(self, server):
        from .comfyui import Client

        return Client(server, self.session, f"pulid-sweep-{uuid.uuid4()}")

    async def _face_name(self, server, face):
        async with self.lock:
            if (server, face) not in self.uploads:
                self.uploads[server, face] = await self.client(server).upload_image(
                    self.faces[face], name=f"pulid_sweep_{face}{self.faces[face].suffix}")
            return self.uploads[server, face]

    async def __call__(self, server, job):
        import aiohttp

        from .generate import fill_workflow, run_prompt

        face = job.face if job.face is not None else next(iter(self.faces))  # weight 0: any face
        try:
            values = dict(self.values, prompt=job.prompt, seed=job.seed, weight=job.weight,
                          method=job.method, face=await self._face_name(server, face))
            return await run_prompt(self.client(server), fill_workflow(self.workflow, values), bar=False)
        except aiohttp.ClientConnectionError as exc:
            raise ServerGone(f"{type(exc).__name__}: {exc}") from None


# ---------------------------------------------------------------------------------- scoring and reports
@dataclass
class Row:
    """One line of scores.csv: an image's settings and its three numbers (None: no face, or not measured)."""

    job: Job
    settings: dict
    likeness: float | None = None
    adherence: float | None = None
    preservation: float | None = None
    note: str = ""

    def as_dict(self) -> dict:
        job, s = self.job, self.settings
        return {"file": f"{IMAGES}/{job.name}", "kind": job.kind, "face": job.face or "", "prompt": job.prompt,
                "weight": format_weight(job.weight), "method": job.method or "", "seed": job.seed,
                "checkpoint": s.get("checkpoint"), "pulid_file": s.get("pulid_file"), "steps": s.get("steps"),
                "cfg": s.get("cfg"), "width": s.get("width"), "height": s.get("height"),
                "likeness": _number(self.likeness, 4, "no face" if job.face else ""),
                "prompt_adherence": _number(self.adherence, 2), "preservation": _number(self.preservation, 4),
                "note": self.note}


def _number(value, digits, missing=""):
    return missing if value is None else f"{value:.{digits}f}"


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def csv_text(rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_dict())
    return out.getvalue()


def read_scores(path, jobs_by_file, settings) -> dict:
    """{job: Row} from an earlier scores.csv, for the jobs still in the grid."""
    rows = {}
    with contextlib.suppress(FileNotFoundError):
        with open(path, newline="", encoding="utf-8") as f:
            for record in csv.DictReader(f):
                job = jobs_by_file.get(record.get("file"))
                if job is None:
                    continue
                rows[job] = Row(job, settings, _float(record.get("likeness")),
                                _float(record.get("prompt_adherence")), _float(record.get("preservation")),
                                record.get("note") or "")
    return rows


def load_image(path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def score(jobs, folder, faces, encoder, clip, batch=8) -> dict:
    """{job: Row-values (likeness, adherence, preservation, note)} for rendered `jobs` (images in `folder`).

    Scored by pulid.scoring.score_batch, as Evaluate PuLID Batch scores, in chunks of one face (its photo is
    the reference). Baselines first, so each is embedded once however many PuLID images share it; one scored
    in an earlier run (not in `jobs`) is embedded when first needed.
    """
    import itertools

    import torch
    from pulid.scoring import score_batch
    from pulid.tradeoff import image_embeddings

    results = dict.fromkeys(jobs)
    baselines = {}  # file name -> CLIP embedding
    ordered = sorted(jobs, key=lambda job: (not job.baseline, job.face or ""))
    for face, group in itertools.groupby(ordered, key=lambda job: job.face):
        group = list(group)
        references = None if face is None else [load_image(faces[face])]
        for start in range(0, len(group), batch):
            chunk = group[start:start + batch]
            base = None
            if face is not None:
                missing = sorted({job.baseline_job.name for job in chunk} - set(baselines))
                if missing:
                    found = image_embeddings(clip.vision, [load_image(folder / name) for name in missing])
                    baselines.update(zip(missing, found))
                base = torch.stack([baselines[job.baseline_job.name] for job in chunk])
            scores = score_batch(clip, [load_image(folder / job.name) for job in chunk], [job.prompt for job in chunk],
                                 encoder=encoder, references=references, baseline_embeddings=base)
            for i, job in enumerate(chunk):
                if job.baseline:
                    baselines[job.name] = scores.embeddings[i]
                results[job] = {"likeness": scores.likeness[i], "adherence": scores.adherence[i],
                                "preservation": None if base is None else scores.preservation[i],
                                "note": scores.notes[i]}
    return results


def mean_sd(values):
    """(mean, sample standard deviation; 0 for one value) of the values that exist, or (None, None)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def chart_groups(rows):
    """[(label, rows)] per face, method and weight: each becomes one point (mean and sd over prompts and seeds)."""
    groups = {}
    for row in rows:
        if row.job.baseline:
            continue
        groups.setdefault((row.job.face, row.job.method, row.job.weight), []).append(row)
    return [(f"{face} {method} {format_weight(weight)}", members)
            for (face, method, weight), members in groups.items()]


def chart_points(rows):
    from pulid.chart import ChartPoint

    points = []
    for label, members in chart_groups(rows):
        likeness, likeness_sd = mean_sd([r.likeness for r in members])
        adherence, adherence_sd = mean_sd([r.adherence for r in members])
        preserved, _ = mean_sd([r.preservation for r in members])
        points.append(ChartPoint(label=label, likeness=likeness, adherence=adherence, preservation=preserved,
                                 likeness_sd=likeness_sd, adherence_sd=adherence_sd))
    return points


def contact_sheet(rows, folder, thumb=160):
    """One picture: a row per face x method x weight (baselines on top), a column per prompt x seed,
    the scores under each image; the prompts listed below. Returns PNG bytes."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=max(10, thumb // 12))
    columns = list(dict.fromkeys((row.job.prompt, row.job.seed) for row in rows))
    row_keys = list(dict.fromkeys((row.job.face, row.job.method, row.job.weight) for row in
                                  sorted(rows, key=lambda r: not r.job.baseline)))
    prompts = list(dict.fromkeys(p for p, _ in columns))
    by_cell = {((r.job.face, r.job.method, r.job.weight), (r.job.prompt, r.job.seed)): r for r in rows}
    line = font.size + 4
    label_w, head_h, text_h = thumb, line * 2, line * 2 + 4
    width = label_w + len(columns) * (thumb + 4)
    height = head_h + len(row_keys) * (thumb + text_h) + (len(prompts) + 1) * line
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, (prompt, seed) in enumerate(columns):
        draw.text((label_w + c * (thumb + 4), 4), f"P{prompts.index(prompt) + 1} seed {seed}", fill=(0, 0, 0),
                  font=font)
    for r, key in enumerate(row_keys):
        top = head_h + r * (thumb + text_h)
        face, method, weight = key
        label = "baseline\n(weight 0)" if face is None else f"{face}\n{method}\nweight {format_weight(weight)}"
        draw.multiline_text((4, top + 4), label, fill=(0, 0, 0), font=font)
        for c, column in enumerate(columns):
            row = by_cell.get((key, column))
            left = label_w + c * (thumb + 4)
            if row is None or not (folder / row.job.name).exists():
                # no row: not rendered yet, or rendered before its baseline (scored once the baseline is there)
                gap = "not scored yet" if row is None else "image missing"
                draw.text((left + 4, top + thumb // 2), gap, fill=(160, 160, 160), font=font)
                continue
            with Image.open(folder / row.job.name) as image:
                image = image.convert("RGB")
                image.thumbnail((thumb, thumb))
                sheet.paste(image, (left, top))
                shown = image.height
            if row.job.baseline:
                numbers = f"CLIP-T {_number(row.adherence, 1, '?')}"
            else:
                numbers = (f"face {_number(row.likeness, 3, 'none')}  CLIP-T {_number(row.adherence, 1, '?')}\n"
                           f"kept {_number(row.preservation, 3, '?')}")
            draw.multiline_text((left, top + shown + 2), numbers, fill=(0, 0, 0), font=font, spacing=2)
    top = head_h + len(row_keys) * (thumb + text_h) + line // 2
    for i, prompt in enumerate(prompts):
        draw.text((4, top + i * line), f"P{i + 1}: {prompt}", fill=(0, 0, 0), font=font)
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def png_bytes(pixels) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


# ---------------------------------------------------------------------------------- the command
@dataclass
class SweepResult:
    folder: Path
    rendered: int
    total: int
    rows: list


def _model_paths(models_dir, pulid_file):
    models = Path(models_dir).expanduser().resolve()
    paths = {"pulid_file": models / PULID_V1_1.folder / (pulid_file or PULID_V1_1.filename),
             "eva_clip": models / EVA_CLIP.folder / EVA_CLIP.filename}
    for name, path in paths.items():
        if not path.is_file():
            raise PulidError(f"{path} not found: the sweep scores with the same model files the servers use, "
                             f"from --models-dir ({models}).")
    return models, paths


def load_face_encoder(models, eva_path, device="cpu"):
    from pulid.catalog import ANTELOPEV2, FACEXLIB_DETECTION
    from pulid.face import FaceEncoder

    return FaceEncoder(str(eva_path), str(models / ANTELOPEV2.folder), str(models / FACEXLIB_DETECTION.folder),
                       providers="CPU" if device == "cpu" else "auto", device=device)


def check_faces(encoder, faces):
    """Every face photo must show a face to the encoder: checked before anything renders."""
    for face, path in faces.items():
        try:
            encoder.choose(load_image(path), "largest")
        except FaceNotFoundError:
            raise PulidError(f"No face found in the face photo {path}. Use a clear, front-facing photo of the "
                             f"person.") from None


def workflow_defaults(workflow, values) -> dict:
    """The fixed settings with the workflow's own value for each one not given."""
    from .generate import INPUTS

    settings = {}
    for key in SETTINGS:
        if values.get(key) is not None:
            settings[key] = values[key]
            continue
        node_id, _, input_name = INPUTS[key]
        settings[key] = workflow.get(node_id, {}).get("inputs", {}).get(input_name)
    return settings


def sweep(*, faces, out, prompts_file=None, weights=DEFAULT_WEIGHTS, methods=DEFAULT_METHODS, seeds=DEFAULT_SEEDS,
          servers=(),
          comfyui=None, models_dir=None, extra_model_paths=None, cpu=False, checkpoint=None, pulid_file=None,
          steps=None, cfg=None, width=None, height=None, negative=None, per_server=PER_SERVER, device="cpu"):
    """Render what is missing of the grid, score it and write the reports; returns a SweepResult."""
    if not servers and not comfyui:
        raise PulidError("Say which ComfyUI renders: --server URL (repeat it for several) or --comfyui <folder> "
                         "to start one.")
    prompts = read_prompts(prompts_file or DEFAULT_PROMPTS)
    faces = face_ids(faces)
    if models_dir is None and comfyui:
        models_dir = Path(comfyui).expanduser() / "models"
    if models_dir is None:
        raise PulidError("Say where the model files are: --models-dir <ComfyUI>/models (the scores use the same "
                         "files as the servers).")
    models, paths = _model_paths(models_dir, pulid_file)
    out = Path(out).expanduser().resolve()
    old = read_manifest(out)

    log.info("loading the face encoder from %s", models)
    encoder = load_face_encoder(models, paths["eva_clip"], device)
    check_faces(encoder, faces)
    cache = hash_cache_file()
    hashes = {name: file_sha256(path, cache) for name, path in paths.items()}
    face_info = {k: {"path": p, "sha256": file_sha256(p)} for k, p in faces.items()}

    from .generate import BASIC_WORKFLOW

    workflow = json.loads(BASIC_WORKFLOW.read_text(encoding="utf-8"))
    values = dict(checkpoint=checkpoint, pulid_file=pulid_file, steps=steps, cfg=cfg, width=width,
                  height=height, negative=negative)
    with contextlib.ExitStack() as stack:
        if not servers:
            from .generate import own_server

            process = stack.enter_context(own_server(comfyui, models_dir, extra_model_paths, cpu, pulid_file,
                                                     prefix="pulid-sweep-"))
            servers = [process.url]
        manifest, rendered, total = asyncio.run(_sweep(out, old, faces, face_info, prompts, weights, methods, seeds,
                                                       list(servers), workflow, values, hashes, per_server))
    # Outside the event loop (Ctrl-C stops it at once) and after our own server is stopped (its memory back).
    rows = report(out, manifest, encoder, paths)
    return SweepResult(out, rendered, total, rows)


async def _sweep(out, old, faces, face_info, prompts, weights, methods, seeds, servers, workflow, values, hashes,
                 per_server):
    """Check the servers, settle the manifest, render what is missing: (manifest, rendered now, grid size)."""
    import aiohttp

    from .comfyui import Client
    from .generate import _default_checkpoint, check_server

    async with aiohttp.ClientSession() as session:
        for server in servers:
            await check_server(Client(server, session, "pulid-sweep"))
        if values.get("checkpoint") is None:
            values = dict(values, checkpoint=await _default_checkpoint(Client(servers[0], session, "pulid-sweep"),
                                                                       workflow))
        settings = dict(workflow_defaults(workflow, values), models=hashes)
        manifest = merge_manifest(old, new_manifest(settings, face_info, prompts, weights, methods, seeds),
                                  where=str(out))
        images = out / IMAGES
        images.mkdir(parents=True, exist_ok=True)
        write_atomic(out / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8"))

        jobs = plan_jobs(faces, prompts, weights, methods, seeds)
        missing = [job for job in jobs if not (images / job.name).exists()]
        log.info("%d image(s) in this grid, %d already rendered, %d to render on %d server(s)",
                 len(jobs), len(jobs) - len(missing), len(missing), len(servers))
        if missing:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            bar = tqdm(total=len(missing), desc="sweep", unit="image", file=sys.stderr)

            async def done(job, data):
                write_atomic(images / job.name, data)
                bar.update(1)

            render = ComfyRenderer(session, workflow, {k: v for k, v in values.items() if k in SETTINGS}, faces)
            try:
                with logging_redirect_tqdm():  # log lines above the bar, not through it
                    await run_jobs(missing, servers, render, done, per_server=per_server)
            finally:
                bar.close()
    return manifest, len(missing), len(jobs)


def report(out, manifest, encoder, paths):
    """Score the images of the whole sweep not scored yet; write scores.csv, the contact sheet and the chart."""
    grid = manifest["grid"]
    faces = {k: Path(v["path"]) for k, v in grid["faces"].items()}
    jobs = plan_jobs(faces, grid["prompts"], grid["weights"], grid["methods"], grid["seeds"])
    images = out / IMAGES
    rendered = [job for job in jobs if (images / job.name).exists()]
    settings = manifest["settings"]
    known = read_scores(out / SCORES, {f"{IMAGES}/{job.name}": job for job in rendered}, settings)
    todo = [job for job in rendered if job not in known
            and (job.baseline or (images / job.baseline_job.name).exists())]
    if todo:
        missing_faces = {job.face for job in todo if job.face and not faces[job.face].is_file()}
        if missing_faces:
            raise PulidError(f"Face photo(s) of this sweep not found any more: "
                             f"{', '.join(str(faces[f]) for f in sorted(missing_faces))}.")
        log.info("scoring %d image(s)", len(todo))
        clip = load_clip(encoder, paths["eva_clip"])
        for job, values in score(todo, images, faces, encoder, clip).items():
            known[job] = Row(job, settings, values["likeness"], values["adherence"], values["preservation"],
                             values["note"])
    rows = [known[job] for job in rendered if job in known]
    write_atomic(out / SCORES, csv_text(rows).encode("utf-8"))
    write_atomic(out / CONTACT_SHEET, contact_sheet(rows, images))
    points = chart_points(rows)
    if points:
        from pulid.chart import tradeoff_chart

        write_atomic(out / CHART, png_bytes(tradeoff_chart(points, title="mean ± sd over prompts and seeds")))
    return rows


def load_clip(encoder, eva_path):
    """Both EVA-CLIP towers: the face encoder's vision tower as it is, the text tower from the same file, run where
    and as the vision tower runs (--device)."""
    from pulid.tradeoff import load_clip as load_towers

    return load_towers(str(eva_path), vision=encoder.eva)
