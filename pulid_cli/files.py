"""Files the command line writes and checks: whole or not at all, and their sha256."""
import contextlib
import hashlib
import os
from pathlib import Path

CHUNK = 1 << 20


def sha256_of(path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path, data: bytes):
    """Write to a temporary file beside `path`, then rename: readers never see half a file, and a stop (Ctrl-C,
    SIGTERM) between the two leaves the old file or none, never a piece."""
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
