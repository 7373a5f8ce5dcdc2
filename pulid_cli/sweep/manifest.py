"""sweep.json: what every image of an output folder shares, so a second run grows the same sweep or is refused.

The manifest holds the settings (checkpoint, steps, cfg, size, negative prompt, sha256 of the PuLID and EVA-CLIP
files) and the grid (faces with their sha256, prompts, weights, methods, seeds). Running the same command again
renders only what is missing; the grid may grow, another setting is refused with the difference named.
"""
import contextlib
import json
import os
from pathlib import Path

from pulid.errors import PulidError

from ..files import sha256_of, write_atomic

MANIFEST = "sweep.json"
FORMAT = "pulid-sweep 1"
SETTINGS = ("checkpoint", "pulid_file", "steps", "cfg", "width", "height", "negative")
"""The settings every image of a sweep shares (besides the model hashes), by their flag names."""


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
    sha = sha256_of(path)
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
