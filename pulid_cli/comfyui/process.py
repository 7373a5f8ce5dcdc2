"""ComfyUI as a program: its main.py started on a free loopback port, in its own process group, and stopped.

`ServerProcess` is the bare process (the browser test harness and the host tests start theirs with it);
`own_server` is the one `generate` and `sweep --comfyui` start for a user: models from where the user said,
everything it writes in a temporary folder, this pack offered to it when it is not installed there.
"""
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pulid.errors import ModelFileError, PulidError

from .client import get_json

log = logging.getLogger(__name__)

PACK_DIR = Path(__file__).resolve().parents[2]
MODEL_FOLDERS = ("checkpoints", "clip", "clip_vision", "configs", "controlnet", "diffusion_models", "embeddings",
                 "facexlib", "insightface", "loras", "pulid", "text_encoders", "unet", "upscale_models", "vae")
"""The folders named in the extra_model_paths.yaml written for --models-dir."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



class ServerProcess:
    """`python main.py --listen 127.0.0.1 --port N ...` from a ComfyUI folder, in its own process group.

    Its output goes to `log_path`. `stop()` ends the whole group (ComfyUI may start helpers), so no
    process outlives the caller, also after an error or Ctrl-C (use it as a context manager).
    """

    def __init__(self, comfyui, args, log_path, python=sys.executable, env=None):
        self.comfyui = Path(comfyui).resolve()
        self.args = list(args)
        self.log_path = Path(log_path)
        self.python = python
        self.env = env
        self.port = None
        self.proc = None
        self._log = None

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=300):
        self.port = free_port()
        cmd = [self.python, "main.py", "--listen", "127.0.0.1", "--port", str(self.port), *self.args]
        log.debug("starting %s in %s", " ".join(cmd), self.comfyui)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=self.comfyui, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.proc.returncode} while starting:\n"
                                   f"{self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                get_json(self.url + "/system_stats", timeout=2)
                return self
            time.sleep(0.5)
        raise RuntimeError(f"ComfyUI did not answer within {timeout} s:\n{self.log_tail()}")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(15)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    def log_tail(self, chars=6000):
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""



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
        require_models(models, pulid_file)
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        scratch = Path(scratch)
        args = server_args(comfyui, scratch, models if models_dir else None, extra_model_paths, cpu)
        log.info("starting ComfyUI from %s", comfyui)
        with ServerProcess(comfyui, args, scratch / "comfyui.log") as process:
            yield process


def server_args(comfyui, scratch, models, extra_model_paths, cpu):
    """main.py's flags: everything it writes goes under `scratch`, models from where the user said."""
    for name in ("input", "output", "temp", "user"):
        (scratch / name).mkdir()
    args = ["--output-directory", str(scratch / "output"), "--input-directory", str(scratch / "input"),
            "--temp-directory", str(scratch / "temp"), "--user-directory", str(scratch / "user"),
            "--database-url", f"sqlite:///{scratch / 'comfyui.db'}", "--disable-auto-launch"]
    if cpu or not has_gpu():
        log.info("no GPU asked for or found: ComfyUI runs on the CPU")
        args.append("--cpu")
    lines = []  # an extra_model_paths.yaml of our own, when needed
    if models is not None:
        lines += ["pulid_generate_models:", f"    base_path: {models}"]
        lines += [f"    {name}: {name}" for name in MODEL_FOLDERS]
    if not pack_installed_in(comfyui):
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


def pack_installed_in(comfyui):
    folder = comfyui / "custom_nodes"
    return folder.is_dir() and any(entry.resolve() == PACK_DIR for entry in folder.iterdir())


def has_gpu():
    try:
        import torch
    except ImportError:
        return False
    mps = getattr(torch.backends, "mps", None)
    return torch.cuda.is_available() or bool(mps is not None and mps.is_available())


def require_models(models: Path, pulid_file):
    """Stop before ComfyUI starts when a model the workflow needs is missing: the doctor's lines."""
    from ..doctor import check_models, format_table

    problems = [c for c in check_models(models, load=False) if c.failed]
    if pulid_file:  # another PuLID file was named: the default one may be absent
        problems = [c for c in problems if c.name != "pulid_v1.1.safetensors"]
    if problems:
        raise ModelFileError("Missing model files:\n" + format_table(problems))
