"""The grid of a sweep: every image it renders as a `Job`, and the lists the command line gives.

The baseline of a prompt x seed (weight 0) does not depend on the face, so it is one job, rendered once; every
PuLID image is compared with it. File names follow the prompt's text (a hash), not its line, so reordering or
growing the prompt file keeps what was rendered.
"""
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from pulid.errors import PulidError

DEFAULT_PROMPTS = Path(__file__).resolve().parent / "prompts.txt"
DEFAULT_WEIGHTS = (0.6, 0.8, 1.0)
DEFAULT_METHODS = ("fidelity",)
DEFAULT_SEEDS = (1, 2)


def read_prompts(path) -> list[str]:
    """One prompt per line; blank lines and lines starting with # are skipped, duplicates kept once."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PulidError(f"Prompt file not found: {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PulidError(f"Cannot read the prompt file {path}: {exc}.") from None
    prompts = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line not in prompts:
            prompts.append(line)
    if not prompts:
        raise PulidError(f"The prompt file {path} has no prompts: write one prompt per line "
                         f"(blank lines and lines starting with # are skipped).")
    return prompts


def face_ids(paths) -> dict:
    """{id: path} for the face photos; the id (the file name without its suffix) names their images."""
    faces = {}
    for path in paths:
        path = Path(path).expanduser().resolve()
        if not path.is_file():
            raise PulidError(f"Face image not found: {path}.")
        face_id = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-") or "face"
        if face_id in faces and faces[face_id] != path:
            raise PulidError(f"Two face photos are both called {face_id!r} ({faces[face_id]} and {path}); "
                             f"their images would share names. Rename one.")
        faces[face_id] = path
    if not faces:
        raise PulidError("Name at least one face photo with --face.")
    return faces


def prompt_key(prompt: str) -> str:
    """A short stable name for a prompt (its file names do not change when the prompt file is reordered)."""
    return "p" + hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:8]


def format_weight(weight: float) -> str:
    return f"{weight:g}"


@dataclass(frozen=True)
class Job:
    """One image of the grid. face None: the baseline of its prompt x seed (weight 0, rendered once)."""

    prompt: str
    seed: int
    face: str | None = None
    weight: float = 0.0
    method: str | None = None

    @property
    def baseline(self) -> bool:
        return self.face is None

    @property
    def kind(self) -> str:
        return "baseline" if self.baseline else "pulid"

    @property
    def name(self) -> str:
        """The image's file name in images/."""
        if self.baseline:
            return f"baseline_{prompt_key(self.prompt)}_s{self.seed}.png"
        return f"{self.face}_{prompt_key(self.prompt)}_{self.method}_w{format_weight(self.weight)}_s{self.seed}.png"

    @property
    def baseline_job(self) -> "Job":
        return Job(self.prompt, self.seed)


def plan_jobs(faces, prompts, weights, methods, seeds) -> list[Job]:
    """Baselines first (one per prompt x seed), then every face x method x weight of each prompt x seed."""
    jobs = [Job(p, s) for p in prompts for s in seeds]
    jobs += [Job(p, s, f, w, m) for p in prompts for s in seeds for f in faces for m in methods for w in weights]
    seen = set()
    return [j for j in jobs if not (j in seen or seen.add(j))]


def parse_list(text, kind, what):
    """'0.6,0.8, 1' -> [0.6, 0.8, 1.0] (kind float/int/str); a clear error naming the flag."""
    values = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            value = kind(item)
        except ValueError:
            raise PulidError(f"{what}: {item!r} is not a{'n integer' if kind is int else ' number'}.") from None
        if value not in values:
            values.append(value)
    if not values:
        raise PulidError(f"{what} is empty.")
    return values


