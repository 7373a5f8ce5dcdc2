"""ComfyUI seen from outside: a client of its HTTP API, its main.py as a child process, one prompt run to its image.

Nothing of ComfyUI is imported, so the command line works unchanged on every ComfyUI release the pack supports:
- client.py: `Client` (HTTP and the event stream of one running server) and ComfyUI's error texts;
- process.py: `ServerProcess` (main.py on a free loopback port) and `own_server` (one started for a command);
- jobs.py: `run_prompt` (queue, follow, fetch the saved image), `check_server`, `default_checkpoint`;
- inputs.py: `InputMap`, the declared inputs of a shipped API workflow (workflows/api/<name>.inputs.json).
Importing this package imports neither aiohttp nor torch.
"""
from .client import Client, ServerGone, combo_options, execution_error_text, get_json, node_errors_text
from .inputs import InputMap, Slot
from .jobs import PACK_NODE, check_server, default_checkpoint, run_prompt
from .process import MODEL_FOLDERS, ServerProcess, free_port, own_server

__all__ = ["Client", "ServerGone", "combo_options", "execution_error_text", "get_json", "node_errors_text",
           "InputMap", "Slot", "PACK_NODE", "check_server", "default_checkpoint", "run_prompt", "MODEL_FOLDERS",
           "ServerProcess", "free_port", "own_server"]
