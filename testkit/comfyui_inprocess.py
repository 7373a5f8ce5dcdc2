"""ComfyUI imported into this process, with custom nodes loaded the way ComfyUI loads them: for the host
tests (tests/host/conftest.py) and the benchmarks (bench/common.py), which need ComfyUI's objects
(the patched ModelPatcher, its sampler) and not only its HTTP answers.

ComfyUI's internals change between releases, so each call reads what the host offers instead of
assuming one form: `load_custom_node` became async, `validate_prompt` gained a prompt id, and
PromptExecutor's cache settings went from `cache_size` to a `cache_args` mapping whose keys grew
(0.33 reads "ram" and "ram_inactive" at every run). The executor here uses the classic cache, for
which those settings are only read, so it gets a mapping that answers 0 for any key.
"""
import asyncio
import collections
import inspect
import os
import sys
import uuid


def import_comfyui(path, cpu=True):
    """Put the ComfyUI at `path` first on sys.path and pick its device (CPU unless cpu=False)."""
    path = os.path.abspath(path)
    if path not in sys.path:
        sys.path.insert(0, path)
    stale = sys.modules.get("nodes")
    if stale is not None and not hasattr(stale, "load_custom_node"):
        del sys.modules["nodes"]  # the pack's own nodes/ package, not ComfyUI's nodes.py
    import comfy.cli_args

    comfy.cli_args.args.cpu = cpu  # read once, when comfy.model_management is first imported
    import comfy.model_management  # noqa: F401


def run(value):
    """The result of a host call that is a coroutine on some releases and a plain value on others."""
    if inspect.isawaitable(value):
        async def wait():
            return await value
        return asyncio.run(wait())
    return value


def load_custom_node(folder, module_parent=None):
    """ComfyUI's own loader on one custom node folder (or comfy_extras file); returns the module."""
    import nodes

    before = set(sys.modules)
    kwargs = {"module_parent": module_parent} if module_parent else {}
    if run(nodes.load_custom_node(os.fspath(folder), **kwargs)) is False:
        raise RuntimeError(f"ComfyUI could not load {folder}; its log above says why")
    # ComfyUI names a folder's module after its full path (dots escaped) or after the folder.
    names = {os.fspath(folder).replace(".", "_x_"), os.path.basename(os.fspath(folder)),
             os.path.splitext(os.path.basename(os.fspath(folder)))[0]}
    found = [n for n in set(sys.modules) - before if n in names] or [n for n in names if n in sys.modules]
    return sys.modules[found[0]] if found else None


class Server:
    """What ComfyUI's executor reads from its PromptServer; every event is kept in `messages`."""

    def __init__(self):
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata = {}
        self.messages = []

    def send_sync(self, event, data, sid=None):
        self.messages.append((event, data))

    def queue_updated(self):
        pass


class Runner:
    """Validate and execute API-format prompts with ComfyUI's own executor."""

    def __init__(self):
        import execution

        self.execution = execution
        self.server = Server()
        params = inspect.signature(execution.PromptExecutor).parameters
        settings = {"cache_args": collections.defaultdict(int)} if "cache_args" in params else {}
        self.executor = execution.PromptExecutor(self.server, **settings)

    def validate(self, prompt):
        """validate_prompt's tuple (ok, error, outputs, node_errors)."""
        params = list(inspect.signature(self.execution.validate_prompt).parameters)
        args = (str(uuid.uuid4()), prompt, None) if params[0] == "prompt_id" else (prompt, None)
        return run(self.execution.validate_prompt(*args[:len(params)]))

    def execute(self, prompt, outputs):
        """Run the `outputs` node ids of a validated prompt; the executor afterwards (success, history)."""
        self.server.messages.clear()
        if hasattr(self.executor, "execute_async"):
            run(self.executor.execute_async(prompt, str(uuid.uuid4()), {}, outputs))
        else:
            self.executor.execute(prompt, str(uuid.uuid4()), {}, outputs)
        return self.executor
