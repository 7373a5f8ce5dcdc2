"""The jobs of a sweep spread over one or more ComfyUI servers, and how one job is rendered on one of them.

Each server gets at most `per_server` jobs at a time, a job goes to whichever server has room, and a server that
refuses or drops the connection is gone: its unfinished jobs go back to the others. A slow render is never taken
for a dead server (there is no time limit on a render).
"""
import asyncio
import collections
import logging
import uuid

from pulid.errors import PulidError

from ..comfyui import Client, ServerGone, run_prompt

log = logging.getLogger(__name__)

PER_SERVER = 2
"""Jobs in flight per server: one rendering, one waiting in its queue (a faster server takes more)."""


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

    async def retire(server, exc, job):
        """`server` is gone. It is marked dead at once, before this task awaits anything, so from the moment its
        ServerGone arrives no sibling worker (one waiting on the lock included) takes a job to it; then the job goes
        back to the pending ones and its renders still in flight are cancelled (they move too)."""
        first = server not in dead
        dead.setdefault(server, exc)
        await give_back(job)
        if first:
            left = [s for s in servers if s not in dead]
            log.warning("server %s is gone (%s): its jobs go to %s", server, exc,
                        ", ".join(left) if left else "no other server")
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
                await retire(server, exc, job)
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

    def __init__(self, session, inputs, workflow, values, faces):
        self.session = session
        self.inputs = inputs  # the workflow's InputMap
        self.workflow = workflow
        self.values = values  # the fixed settings, by generate's argument names
        self.faces = faces  # id -> path
        self.uploads = {}  # (server, face id) -> the name LoadImage takes there
        self.lock = asyncio.Lock()

    def client(self, server):
        return Client(server, self.session, f"pulid-sweep-{uuid.uuid4()}")

    async def _face_name(self, server, face):
        async with self.lock:
            if (server, face) not in self.uploads:
                self.uploads[server, face] = await self.client(server).upload_image(
                    self.faces[face], name=f"pulid_sweep_{face}{self.faces[face].suffix}")
            return self.uploads[server, face]

    async def __call__(self, server, job):
        import aiohttp

        face = job.face if job.face is not None else next(iter(self.faces))  # weight 0: any face
        try:
            values = dict(self.values, prompt=job.prompt, seed=job.seed, weight=job.weight,
                          method=job.method, face=await self._face_name(server, face))
            return await run_prompt(self.client(server), self.inputs.fill(self.workflow, values), bar=False,
                                    output_node=self.inputs.outputs["image"].node)
        except aiohttp.ClientConnectionError as exc:
            raise ServerGone(f"{type(exc).__name__}: {exc}") from None


