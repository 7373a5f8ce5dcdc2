"""A real ComfyUI server started the way a user starts one, with this pack in its custom_nodes (host tests of the
command-line tools: `generate`, `sweep`). The browser test has its own (testkit/browser_harness.py)."""
from pathlib import Path

from pulid_cli.comfyui import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
MODEL_FOLDERS = ("checkpoints", "clip_vision", "pulid", "insightface", "facexlib")


def pack_server(comfyui, models, work, extra_configs=(), env=None) -> ServerProcess:
    """A ServerProcess (not started yet: use it as a context manager) on `models`, everything it writes under `work`
    (output in work/output), `--cpu`, with this checkout in its custom_nodes; `extra_configs`: more
    extra_model_paths.yaml files (e.g. one naming the test-only custom nodes)."""
    work = Path(work)
    (work / "custom_nodes").mkdir(parents=True)
    (work / "custom_nodes" / "pulid_sdxl").symlink_to(ROOT, target_is_directory=True)
    config = work / "extra_model_paths.yaml"
    config.write_text(f"models:\n    base_path: {models}\n" + "".join(f"    {f}: {f}\n" for f in MODEL_FOLDERS)
                      + f"pack:\n    custom_nodes: {work / 'custom_nodes'}\n")
    for name in ("output", "input", "temp", "user"):
        (work / name).mkdir()
    args = ["--cpu", "--output-directory", str(work / "output"), "--input-directory", str(work / "input"),
            "--temp-directory", str(work / "temp"), "--user-directory", str(work / "user"),
            "--database-url", f"sqlite:///{work / 'db.sqlite'}", "--disable-auto-launch",
            "--extra-model-paths-config", str(config)]
    for extra in extra_configs:
        args += ["--extra-model-paths-config", str(extra)]
    return ServerProcess(comfyui, args, work / "server.log", env=env)
