"""Command line: fetch the models, check an install, render one image or a scored grid without the UI.

Logging goes to stderr so the doctor's table and the dry-run list can be piped or diffed.
"""
import argparse
import logging
import signal
import sys
from pathlib import Path

from pulid.catalog import PULID_V1_1
from pulid.errors import PulidError

log = logging.getLogger(__name__)


def _models_dir(args) -> Path:
    if args.models_dir:
        return Path(args.models_dir).expanduser()
    if getattr(args, "comfyui", None):
        return Path(args.comfyui).expanduser() / "models"
    raise PulidError("Say where the models go: --models-dir <ComfyUI>/models or --comfyui <ComfyUI>.")


def _split_names(values) -> list[str]:
    return [n for v in values or () for n in v.split(",") if n]


def build_parser() -> argparse.ArgumentParser:
    from .sweep import grid as sweep_grid, scheduler as sweep_scheduler  # stdlib only: cheap

    parser = argparse.ArgumentParser(
        prog="python -m pulid_cli",
        description="PuLID-SDXL tools: download the models, check an install, render one image.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fetch = sub.add_parser(
        "fetch-models", help="download the model files into a ComfyUI models folder",
        description="Download PuLID v1.1, EVA02-CLIP-L-336, antelopev2 and the facexlib weights "
                    "into their ComfyUI folders, checking size and sha256. Files already in "
                    "place are skipped; interrupted downloads resume.")
    fetch.add_argument("--models-dir", help="ComfyUI's models folder")
    fetch.add_argument("--comfyui", help="ComfyUI folder (models go to <ComfyUI>/models)")
    fetch.add_argument("--only", action="append", metavar="NAME",
                       help="fetch only these (repeat or comma-separate), e.g. pulid_v1; "
                            "see --dry-run for the names")
    fetch.add_argument("--all", action="store_true", help="also fetch the optional files (PuLID v1)")
    fetch.add_argument("--dry-run", action="store_true", help="list what would be downloaded")
    fetch.add_argument("--base-url", help="download every file from <URL>/<file name> (a mirror); "
                                          "default: $PULID_MODELS_BASE_URL, else the public hosts")
    fetch.add_argument("--retries", type=int, default=3, help="retries per URL (default 3)")

    doctor = sub.add_parser(
        "doctor", help="check packages, model files and GPU",
        description="Check the Python packages, every model file (present and loadable) and the "
                    "GPU; print one table with the fix for each problem. Exit code 1 when "
                    "something required is missing or broken.")
    doctor.add_argument("--comfyui", help="ComfyUI folder")
    doctor.add_argument("--models-dir", help="models folder (default <ComfyUI>/models)")
    doctor.add_argument("--no-load", action="store_true",
                        help="only check that the files exist (skip loading them)")

    mig = sub.add_parser(
        "migrate", help="turn a cubiq PuLID_ComfyUI workflow into one with this pack's nodes",
        description="Read a workflow (UI or API format) that uses cubiq's PuLID_ComfyUI nodes and write the same "
                    "graph with this pack's: loaders -> Load PuLID Model / Load PuLID Face Encoder, each "
                    "ApplyPulid(Advanced) -> Encode Face + Apply PuLID (or Apply PuLID Advanced). Prints what "
                    "could not be carried over exactly (also put into the graph as a Note).")
    mig.add_argument("workflow", help="the workflow JSON to read (never changed unless -o names it)")
    mig.add_argument("-o", "--out", help="where to write (default: <workflow>_pulid_sdxl.json beside it)")
    mig.add_argument("--keep-layout", action="store_true",
                     help="keep every node's place and the groups (default: re-lay a UI workflow in columns, "
                          "wires through reroutes under no node)")

    gen = sub.add_parser(
        "generate", help="render one image through ComfyUI's HTTP API",
        description="Run the pack's basic workflow (workflows/api/pulid_basic.json) on ComfyUI and write "
                    "the image: a ComfyUI started for this render (--comfyui) or one already running "
                    "(--server).")
    where = gen.add_mutually_exclusive_group(required=True)
    where.add_argument("--comfyui", help="ComfyUI folder: start its main.py for this render, stop it after")
    where.add_argument("--server", metavar="URL", help="a running ComfyUI, e.g. http://127.0.0.1:8188")
    gen.add_argument("--face", required=True, help="photo of the face to keep")
    gen.add_argument("--prompt", required=True, help="what to draw")
    gen.add_argument("--out", required=True, help="output PNG")
    gen.add_argument("--seed", type=int)
    gen.add_argument("--weight", type=float, help="PuLID identity weight")
    gen.add_argument("--method", help="PuLID method (fidelity, style, ...)")
    gen.add_argument("--models-dir", help="with --comfyui: models folder to use instead of <ComfyUI>/models")
    gen.add_argument("--workflow", help="API-format workflow JSON (default: the pack's basic one)")
    _render_flags(gen)

    sw = sub.add_parser(
        "sweep", help="render and score a grid: faces x prompts x weights x methods x seeds",
        description="Render the pack's basic workflow for every face x prompt x weight x method x seed (plus one "
                    "baseline at weight 0 per prompt x seed) through ComfyUI's HTTP API, on one or more servers, "
                    "score each image on this machine (likeness, prompt adherence, preservation) and write "
                    "images/, scores.csv, contact_sheet.png and tradeoff.png into --out. Run the same command "
                    "again to render only what is missing, or with more faces, prompts, weights, methods or "
                    "seeds to grow the sweep.")
    where = sw.add_mutually_exclusive_group()
    where.add_argument("--server", metavar="URL", action="append",
                       help="a running ComfyUI; repeat for several (each gets its own queue of jobs)")
    where.add_argument("--comfyui", help="ComfyUI folder: start its main.py for this sweep, stop it after")
    sw.add_argument("--face", action="append", required=True, help="photo of a face (repeat for several)")
    sw.add_argument("--prompts", metavar="FILE",
                    help="prompts, one per line (default: the pack's own set, pulid_cli/sweep/prompts.txt)")
    for flag, values, what in (("--weights", sweep_grid.DEFAULT_WEIGHTS, "PuLID weights"),
                               ("--methods", sweep_grid.DEFAULT_METHODS, "PuLID methods"),
                               ("--seeds", sweep_grid.DEFAULT_SEEDS, "seeds")):
        listed = ",".join(map(str, values))
        sw.add_argument(flag, default=listed, help=f"{what}, comma-separated (default {listed})")
    sw.add_argument("--out", required=True, help="output folder (its sweep.json says which sweep it holds)")
    sw.add_argument("--models-dir", help="models folder the servers use (the scores load the same files); "
                                         "default <ComfyUI>/models with --comfyui")
    sw.add_argument("--per-server", type=int, default=sweep_scheduler.PER_SERVER,
                    help=f"jobs in flight on each server at a time (default {sweep_scheduler.PER_SERVER}: one "
                         f"rendering, one waiting)")
    sw.add_argument("--device", default="cpu", help="where the scores are computed (default cpu)")
    _render_flags(sw)
    return parser


def _render_flags(parser):
    """The settings of the basic workflow and of a ComfyUI the command starts, shared by generate and sweep."""
    parser.add_argument("--negative", default=None, help="negative prompt")
    parser.add_argument("--checkpoint", help="SDXL checkpoint in models/checkpoints (default: the first one found)")
    parser.add_argument("--pulid-file",
                        help=f"PuLID file in models/{PULID_V1_1.folder} (default {PULID_V1_1.filename})")
    for flag, kind in (("--steps", int), ("--cfg", float), ("--width", int), ("--height", int)):
        parser.add_argument(flag, type=kind)
    parser.add_argument("--extra-model-paths", help="with --comfyui: an extra_model_paths.yaml to load as well")
    parser.add_argument("--cpu", action="store_true", help="with --comfyui: run on CPU even when a GPU is present")


def _run_fetch(args) -> int:
    from . import fetch

    names = _split_names(args.only)
    if args.all:
        names = [e.name for e in fetch.CATALOG]
    models_dir = _models_dir(args)
    try:
        entries = fetch.select(names)
    except KeyError as exc:
        raise PulidError(str(exc.args[0])) from None
    if args.dry_run:
        results = fetch.fetch_models(models_dir, [e.name for e in entries], dry_run=True)
        for r in results:
            size = f"{r.entry.size / 1e6:,.0f} MB" if r.entry.size else "size ?"
            status = "present" if r.status == "present" else "download"
            sys.stdout.write(f"{status:9} {r.entry.name:20} {size:>10}  {r.path}  <- "
                             f"{fetch.download_urls(r.entry, args.base_url)[0]}\n")
        return 0
    progress = fetch.TqdmProgress()
    try:
        results = fetch.fetch_models(models_dir, [e.name for e in entries], base_url=args.base_url,
                                     progress=progress, retries=args.retries)
    finally:
        progress.close()
    for r in results:
        log.info("%s: %s (%s)", r.entry.name, r.status, r.path)
    return 0


def _run_doctor(args) -> int:
    from . import doctor

    checks = doctor.run_checks(_models_dir(args), load=not args.no_load)
    sys.stdout.write(doctor.format_table(checks) + "\n")
    return 1 if doctor.failed(checks) else 0


def _run_migrate(args) -> int:
    from workflow_files.migrate import migrate_file

    source = Path(args.workflow)
    target = Path(args.out) if args.out else source.with_name(source.stem + "_pulid_sdxl.json")
    if not args.out and target.exists():
        raise PulidError(f"{target} exists already; name the output with -o (it may be the input itself).")
    result = migrate_file(source, target, keep_layout=args.keep_layout)
    for note in result.notes:
        sys.stdout.write(f"note: {note}\n")
    sys.stdout.write(f"{target}\n")
    return 0


def _run_generate(args) -> int:
    from .generate import generate

    if args.server and (args.models_dir or args.extra_model_paths or args.cpu):
        raise PulidError("--models-dir, --extra-model-paths and --cpu are for a ComfyUI this command starts "
                         "(--comfyui); a running server (--server) keeps its own settings.")
    out = generate(
        comfyui=args.comfyui, server=args.server, face=args.face, prompt=args.prompt, out=args.out,
        negative=args.negative, checkpoint=args.checkpoint, pulid_file=args.pulid_file,
        steps=args.steps, cfg=args.cfg, seed=args.seed, weight=args.weight, method=args.method,
        width=args.width, height=args.height, models_dir=args.models_dir,
        extra_model_paths=args.extra_model_paths, workflow=args.workflow, cpu=args.cpu)
    sys.stdout.write(f"{out}\n")
    return 0


def _run_sweep(args) -> int:
    from .sweep.command import sweep
    from .sweep.grid import parse_list

    if args.server and (args.extra_model_paths or args.cpu):
        raise PulidError("--extra-model-paths and --cpu are for a ComfyUI this command starts (--comfyui); "
                         "a running server (--server) keeps its own settings.")
    if args.per_server < 1:
        raise PulidError("--per-server must be 1 or more.")
    result = sweep(
        faces=args.face, out=args.out, prompts_file=args.prompts,
        weights=parse_list(args.weights, float, "--weights"), methods=parse_list(args.methods, str, "--methods"),
        seeds=parse_list(args.seeds, int, "--seeds"), servers=args.server or (), comfyui=args.comfyui,
        models_dir=args.models_dir, extra_model_paths=args.extra_model_paths, cpu=args.cpu,
        checkpoint=args.checkpoint, pulid_file=args.pulid_file, steps=args.steps, cfg=args.cfg, width=args.width,
        height=args.height, negative=args.negative, per_server=args.per_server, device=args.device)
    log.info("%d of %d image(s) rendered now; scores of %d in %s", result.rendered, result.total, len(result.rows),
             result.folder)
    sys.stdout.write(f"{result.folder}\n")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")
    run = {"fetch-models": _run_fetch, "doctor": _run_doctor, "generate": _run_generate, "migrate": _run_migrate,
           "sweep": _run_sweep}
    try:
        return run[args.command](args)
    except PulidError as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM where a command handles it (sweep)
        signum = getattr(exc, "signum", signal.SIGINT)
        log.error("interrupted (%s)", signal.Signals(signum).name)
        return 128 + signum
