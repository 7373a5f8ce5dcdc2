"""Download the model files of the catalog into a ComfyUI models directory, safely.

A file is written as `<name>.part` next to its final place and renamed only after its size and
sha256 checked out, so ComfyUI never lists a half-written or wrong model. A `.part` left by a cut
connection is resumed with an HTTP Range request (by the retry loop, or by the next run); one that
turns out wrong after resuming is thrown away and downloaded once more from scratch. Zips (the
antelopev2 pack) are unpacked flat: their members land in the entry's folder whatever folder they
sat in inside the zip, which is the classic `antelopev2/antelopev2/` mistake.

Only the standard library does the HTTP, so the fetcher adds no dependency. Set
`PULID_MODELS_BASE_URL` (or pass `base_url`) to download every file from `<base>/<file name>`
instead: a local mirror, or the test server.
"""
import http.client
import logging
import os
import shutil
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable

from pulid.errors import ModelFileError
from pulid.catalog import CATALOG, ModelFile, find

from .files import CHUNK, sha256_of

log = logging.getLogger(__name__)

BASE_URL_ENV = "PULID_MODELS_BASE_URL"
USER_AGENT = "pulid-sdxl-fetch/1"

# (entry, bytes so far, total bytes or None): called as bytes arrive, so a GUI can draw a bar.
ProgressCallback = Callable[[ModelFile, int, "int | None"], None]


@dataclass
class FetchResult:
    entry: ModelFile
    path: Path  # the file, or for an archive the folder it was unpacked into
    status: str  # "present", "downloaded" or "planned" (dry run)


class _Cut(Exception):
    """The server closed the connection before sending everything it announced."""


def select(names: Iterable[str] | None = None, catalog=CATALOG) -> list[ModelFile]:
    """The entries to fetch: the catalog's defaults, or exactly the named ones (in catalog order)."""
    if not names:
        return [e for e in catalog if e.default]
    picked = {find(n, catalog).name for n in names}
    return [e for e in catalog if e.name in picked]


def target_path(entry: ModelFile, models_dir) -> Path:
    """Where the entry lives once installed: its file, or its folder for an archive."""
    folder = Path(models_dir, *entry.folder.split("/"))
    return folder if entry.is_archive else folder / entry.filename


def is_installed(entry: ModelFile, models_dir) -> bool:
    """True when every file of the entry is in place with its published size (when known)."""
    folder = Path(models_dir, *entry.folder.split("/"))
    if entry.is_archive:
        expected = [(m.filename, m.size) for m in entry.members]
    else:
        expected = [(entry.filename, entry.size)]
    for filename, size in expected:
        path = folder / filename
        if not path.is_file() or (size is not None and path.stat().st_size != size):
            return False
    return True


def download_urls(entry: ModelFile, base_url: str | None = None) -> tuple[str, ...]:
    base_url = base_url if base_url is not None else os.environ.get(BASE_URL_ENV)
    if base_url:
        return (f"{base_url.rstrip('/')}/{entry.filename}",)
    return entry.urls


def fetch_models(models_dir, names: Iterable[str] | None = None, *, catalog=CATALOG,
                 base_url: str | None = None, progress: ProgressCallback | None = None,
                 dry_run: bool = False, retries: int = 3, retry_wait: float = 2.0,
                 timeout: float = 60.0) -> list[FetchResult]:
    """Fetch the selected entries into `models_dir`; files already in place are left alone."""
    results = []
    for entry in select(names, catalog):
        path = target_path(entry, models_dir)
        if is_installed(entry, models_dir):
            results.append(FetchResult(entry, path, "present"))
        elif dry_run:
            results.append(FetchResult(entry, path, "planned"))
        else:
            fetch_one(entry, models_dir, base_url=base_url, progress=progress, retries=retries,
                      retry_wait=retry_wait, timeout=timeout)
            results.append(FetchResult(entry, path, "downloaded"))
    return results


def fetch_one(entry: ModelFile, models_dir, *, base_url: str | None = None,
              progress: ProgressCallback | None = None, retries: int = 3,
              retry_wait: float = 2.0, timeout: float = 60.0) -> Path:
    """Download one entry, check it, and move it (or unpack it) into place."""
    folder = Path(models_dir, *entry.folder.split("/"))
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (entry.filename + ".part")
    urls = download_urls(entry, base_url)
    _check_free_space(entry, folder, part)

    for fresh_retry in (False, True):
        resumed = part.exists() and part.stat().st_size > 0
        announced = _download(entry, urls, part, progress, retries, retry_wait, timeout)
        problem = _verify(part, entry.size if entry.size is not None else announced, entry.sha256)
        if problem is None:
            break
        part.unlink()
        if not (resumed and not fresh_retry):
            raise ModelFileError(
                f"The download of {entry.filename} from {urls[0]} is not the published file "
                f"({problem}); nothing was written to {folder}. Run the command again; if it "
                f"fails the same way the server is sending a different file, so download it by "
                f"hand from {entry.urls[0]} into {folder}.")
        log.warning("%s: the resumed download was wrong (%s); downloading it again from scratch",
                    entry.filename, problem)

    if entry.is_archive:
        _unpack_flat(entry, part, folder)
        part.unlink()
        return folder
    final = folder / entry.filename
    os.replace(part, final)
    log.info("saved %s", final)
    return final


def _check_free_space(entry: ModelFile, folder: Path, part: Path) -> None:
    if entry.size is None:
        return
    have = part.stat().st_size if part.exists() else 0
    need = entry.size - have + sum(m.size or 0 for m in entry.members)
    free = shutil.disk_usage(folder).free
    if free < need:
        raise ModelFileError(
            f"Not enough disk space for {entry.filename}: it needs {need / 1e9:.2f} GB in "
            f"{folder}, which has {free / 1e9:.2f} GB free. Free some space and run again.")


def _download(entry, urls, part, progress, retries, retry_wait, timeout) -> int | None:
    """Bring `part` to the full file, resuming it; returns the size the server announced."""
    errors = []
    for url in urls:
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(retry_wait * attempt)
            try:
                return _transfer(entry, url, part, progress, timeout)
            except urllib.error.HTTPError as exc:
                errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
                if exc.code < 500 and exc.code != 429:
                    break  # this URL will not work: try the next one
            except (_Cut, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                errors.append(f"{url}: {exc}")
            log.warning("%s: attempt %d failed: %s", entry.filename, attempt + 1, errors[-1])
    kept = (f" The {part.stat().st_size} bytes received are kept in {part} and the next run "
            f"resumes them." if part.exists() and part.stat().st_size else "")
    raise ModelFileError(
        f"Could not download {entry.filename}: {errors[-1] if errors else 'no URL'}. Check the "
        f"internet connection (or {BASE_URL_ENV}) and run the command again, or download it by "
        f"hand from {entry.urls[0]} into {part.parent}.{kept}")


def _transfer(entry, url, part, progress, timeout) -> int | None:
    have = part.stat().st_size if part.exists() else 0
    if entry.size is not None and have > entry.size:
        part.unlink()  # longer than the real file: cannot be a prefix of it
        have = 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                          timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            return have  # nothing left to send: the part is complete, or _verify will say not
        raise
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None else None
        if have and response.status == 206 and _range_start(response) == have:
            mode, done = "ab", have
        else:
            mode, done = "wb", 0  # the server ignored the Range: start over
        total = done + length if length is not None else None
        if progress:
            progress(entry, done, total)
        with open(part, mode) as out:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(entry, done, total)
    if total is not None and done < total:
        raise _Cut(f"connection closed after {done} of {total} bytes")
    return total


def _range_start(response) -> int | None:
    value = response.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _verify(path: Path, size: int | None, sha256: str | None) -> str | None:
    """None when the file matches, else what is wrong with it."""
    actual = path.stat().st_size
    if size is not None and actual != size:
        return f"{actual} bytes instead of {size}"
    if sha256 is not None:
        digest = sha256_of(path)
        if digest != sha256:
            return f"sha256 {digest} instead of {sha256}"
    return None


def _unpack_flat(entry: ModelFile, archive: Path, folder: Path) -> None:
    """Extract the entry's members into `folder` itself, checking each; all or nothing."""
    wanted = {m.filename: m for m in entry.members}
    staged = []
    try:
        with zipfile.ZipFile(archive) as zf:
            found = {}
            for info in zf.infolist():
                base = PurePosixPath(info.filename.replace("\\", "/")).name
                if not info.is_dir() and base in wanted:
                    found.setdefault(base, info)
            missing = sorted(set(wanted) - set(found))
            if missing:
                raise ModelFileError(
                    f"{entry.filename} does not contain {', '.join(missing)}; it is not the "
                    f"{entry.name} pack. Download it by hand from {entry.urls[0]}.")
            for name, member in wanted.items():
                tmp = folder / (name + ".part")
                staged.append(tmp)
                with zf.open(found[name]) as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                problem = _verify(tmp, member.size, member.sha256)
                if problem:
                    raise ModelFileError(
                        f"{name} inside {entry.filename} is not the published file ({problem}). "
                        f"Download the pack by hand from {entry.urls[0]}.")
    except zipfile.BadZipFile as exc:
        raise ModelFileError(f"{entry.filename} is not a valid zip ({exc}). Run the command "
                             f"again to download it afresh.") from exc
    except BaseException:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        raise
    for tmp in staged:
        os.replace(tmp, tmp.with_suffix(""))
    log.info("unpacked %s into %s", entry.filename, folder)


class TqdmProgress:
    """A ProgressCallback drawing one tqdm bar per file on stderr."""

    def __init__(self):
        self._bars = {}

    def __call__(self, entry: ModelFile, done: int, total: int | None) -> None:
        from tqdm import tqdm

        bar = self._bars.get(entry.name)
        if bar is None or (total is not None and bar.total != total) or done < bar.n:
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                       desc=entry.filename, leave=True)
            self._bars[entry.name] = bar
        bar.update(done - bar.n)
        if total is not None and done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
