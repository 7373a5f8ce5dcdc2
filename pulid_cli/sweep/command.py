"""The sweep command: check what can be checked before anything renders, render what is missing, score, report.

Order of a run: the face photos (each a readable picture in which the detector alone finds a face: no ArcFace or
EVA-CLIP is loaded for it), the model files the scores need, the servers (or the sweep's own ComfyUI), the files'
hashes and the manifest; then the renders; then, once rendering is over and the sweep's own server has stopped,
the scoring models and the reports. Rendering thus holds no face model in this process.

Ctrl-C and SIGTERM stop a sweep the same way: the prompts it queued are taken off the servers, every file is
whole (written to a temporary name and renamed) and the same command later renders only what is missing.
"""
import asyncio
import contextlib
import json
import logging
import resource
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from pulid.catalog import ANTELOPEV2, EVA_CLIP, FACEXLIB_DETECTION, PULID_V1_1, find_installed
from pulid.errors import PulidError

from ..comfyui import Client, InputMap, check_server, default_checkpoint, own_server
from ..files import write_atomic
from ..generate import BASIC
from .grid import DEFAULT_METHODS, DEFAULT_PROMPTS, DEFAULT_SEEDS, DEFAULT_WEIGHTS, face_ids, plan_jobs, read_prompts
from .manifest import MANIFEST, SETTINGS, file_sha256, hash_cache_file, merge_manifest, new_manifest, read_manifest
from .report import CHART, CONTACT_SHEET, IMAGES, SCORES, Row, chart_points, csv_text, load_image, read_scores, score
from .scheduler import PER_SERVER, ComfyRenderer, run_jobs
from .sheet import contact_sheet, png_bytes

log = logging.getLogger(__name__)


class Stopped(KeyboardInterrupt):
    """The sweep was stopped by a signal (SIGTERM); handled as Ctrl-C is, its number kept for the exit code."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass
class SweepResult:
    folder: Path
    rendered: int
    total: int
    rows: list


def model_paths(models_dir, pulid_file):
    """The models folder and the files the scores read (the same the servers load), each looked for in every folder
    the catalog allows it (EVA-CLIP: clip_vision or pulid), or a PulidError naming where it was looked for."""
    models = Path(models_dir).expanduser().resolve()
    paths = {}
    for name, entry, filename in (("pulid_file", PULID_V1_1, pulid_file or PULID_V1_1.filename),
                                  ("eva_clip", EVA_CLIP, EVA_CLIP.filename)):
        folder = find_installed(entry, models, [filename])
        if folder is None:
            where = " or ".join(str(models / f / filename) for f in entry.folders)
            raise PulidError(f"{where} not found: the sweep scores with the same model files the servers use, "
                             f"from --models-dir ({models}).")
        paths[name] = Path(folder) / filename
    return models, paths


def check_faces(models, faces, providers="CPU"):
    """Every face photo is a readable picture in which the face detector finds a face; else a PulidError naming it.

    The detector alone is loaded (not ArcFace, facexlib or EVA-CLIP) and let go before anything renders."""
    from pulid.detector import FaceDetector

    detector = FaceDetector(models / ANTELOPEV2.folder, providers=providers)
    for path in faces.values():
        try:
            pixels = load_image(path)
        except Exception as exc:  # PIL raises several types for a file that is not a picture
            raise PulidError(f"The face photo {path} cannot be read as an image ({exc}). Give a PNG, JPEG or "
                             f"WebP photo of the face.") from None
        if not detector.detect(pixels):
            raise PulidError(f"No face found in the face photo {path}. Use a clear, front-facing photo of the "
                             f"person.")


def load_scorers(models, eva_path, device="cpu"):
    """(face encoder, both CLIP towers) for the scores, loaded once rendering is over, with one read of the
    EVA-CLIP file: the face encoder takes the vision tower that read gave."""
    from pulid.face import FaceEncoder
    from pulid.tradeoff import load_clip

    clip = load_clip(str(eva_path), device=device)
    encoder = FaceEncoder(clip.vision, str(models / ANTELOPEV2.folder), str(models / FACEXLIB_DETECTION.folder),
                          providers="CPU" if device == "cpu" else "auto", device=device)
    return encoder, clip


def workflow_defaults(inputs, workflow, values) -> dict:
    """The fixed settings with the workflow's own value for each one not given."""
    return {key: values[key] if values.get(key) is not None else inputs.value(workflow, key) for key in SETTINGS}


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB: VmHWM where /proc has it (ru_maxrss would also count the
    process this one was forked from before its exec), else ru_maxrss (KiB on Linux, bytes on macOS)."""
    with contextlib.suppress(OSError):
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6


@contextlib.contextmanager
def sigterm_stops():
    """SIGTERM raises Stopped (a KeyboardInterrupt) while the sweep runs, so it unwinds as Ctrl-C does."""
    def stop(signum, frame):
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def sweep(*, faces, out, prompts_file=None, weights=DEFAULT_WEIGHTS, methods=DEFAULT_METHODS, seeds=DEFAULT_SEEDS,
          servers=(), comfyui=None, models_dir=None, extra_model_paths=None, cpu=False, checkpoint=None,
          pulid_file=None, steps=None, cfg=None, width=None, height=None, negative=None, per_server=PER_SERVER,
          device="cpu"):
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
    models, paths = model_paths(models_dir, pulid_file)
    check_faces(models, faces, providers="CPU" if device == "cpu" else "auto")
    out = Path(out).expanduser().resolve()
    old = read_manifest(out)
    inputs = InputMap.shipped(BASIC)
    workflow = json.loads(inputs.workflow.read_text(encoding="utf-8"))
    values = dict(checkpoint=checkpoint, pulid_file=pulid_file, steps=steps, cfg=cfg, width=width,
                  height=height, negative=negative)
    grid = (faces, prompts, weights, methods, seeds)
    with sigterm_stops(), contextlib.ExitStack() as stack:
        if not servers:
            process = stack.enter_context(own_server(comfyui, models_dir, extra_model_paths, cpu, pulid_file,
                                                     prefix="pulid-sweep-"))
            servers = [process.url]
        manifest, rendered, total = asyncio.run(_render(out, old, grid, list(servers), inputs, workflow, values,
                                                        paths, per_server))
        log.info("peak memory of this process while rendering: %.0f MB", peak_rss_mb())
        stack.close()  # our own server stops here: its memory is back before the scoring models load
        rows = report(out, manifest, lambda: load_scorers(models, paths["eva_clip"], device))
    return SweepResult(out, rendered, total, rows)


async def _render(out, old, grid, servers, inputs, workflow, values, paths, per_server):
    """Check the servers, hash the model files, settle the manifest, render what is missing:
    (manifest, rendered now, grid size)."""
    import aiohttp

    faces, prompts, weights, methods, seeds = grid
    async with aiohttp.ClientSession() as session:
        for server in servers:
            await check_server(Client(server, session, "pulid-sweep"))
        if values.get("checkpoint") is None:
            wanted = inputs.value(workflow, "checkpoint")
            values = dict(values, checkpoint=await default_checkpoint(Client(servers[0], session, "pulid-sweep"),
                                                                      wanted))
        cache = hash_cache_file()
        hashes = {name: file_sha256(path, cache) for name, path in paths.items()}
        face_info = {k: {"path": p, "sha256": file_sha256(p)} for k, p in faces.items()}
        settings = dict(workflow_defaults(inputs, workflow, values), models=hashes)
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

            render = ComfyRenderer(session, inputs, workflow, {k: v for k, v in values.items() if k in SETTINGS},
                                   faces)
            try:
                with logging_redirect_tqdm():  # log lines above the bar, not through it
                    await run_jobs(missing, servers, render, done, per_server=per_server)
            finally:
                bar.close()
    return manifest, len(missing), len(jobs)


def report(out, manifest, load_models):
    """Score the images of the whole sweep not scored yet; write scores.csv, the contact sheet and the chart.

    `load_models() -> (face encoder, Clip)` is called only when there is something to score."""
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
        encoder, clip = load_models()
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
