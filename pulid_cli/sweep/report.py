"""The scores of a sweep: each rendered image scored once (pulid's scoring, on this machine), kept in scores.csv.

A re-run scores only the images not in scores.csv yet; a PuLID image is scored once its baseline is there (its
preservation needs it). Then scores.csv, the contact sheet and the chart are written again for the whole sweep.
"""
import contextlib
import csv
import io
import logging
import math
from dataclasses import dataclass

from .grid import Job, format_weight

log = logging.getLogger(__name__)

SCORES = "scores.csv"
CONTACT_SHEET = "contact_sheet.png"
CHART = "tradeoff.png"
IMAGES = "images"
COLUMNS = ("file", "kind", "face", "prompt", "weight", "method", "seed", "checkpoint", "pulid_file", "steps", "cfg",
           "width", "height", "likeness", "prompt_adherence", "preservation", "note")


@dataclass
class Row:
    """One line of scores.csv: an image's settings and its three numbers (None: no face, or not measured)."""

    job: Job
    settings: dict
    likeness: float | None = None
    adherence: float | None = None
    preservation: float | None = None
    note: str = ""

    def as_dict(self) -> dict:
        job, s = self.job, self.settings
        return {"file": f"{IMAGES}/{job.name}", "kind": job.kind, "face": job.face or "", "prompt": job.prompt,
                "weight": format_weight(job.weight), "method": job.method or "", "seed": job.seed,
                "checkpoint": s.get("checkpoint"), "pulid_file": s.get("pulid_file"), "steps": s.get("steps"),
                "cfg": s.get("cfg"), "width": s.get("width"), "height": s.get("height"),
                "likeness": number_text(self.likeness, 4, "no face" if job.face else ""),
                "prompt_adherence": number_text(self.adherence, 2), "preservation": number_text(self.preservation, 4),
                "note": self.note}


def number_text(value, digits, missing=""):
    return missing if value is None else f"{value:.{digits}f}"


def _float(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def csv_text(rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row.as_dict())
    return out.getvalue()


def read_scores(path, jobs_by_file, settings) -> dict:
    """{job: Row} from an earlier scores.csv, for the jobs still in the grid."""
    rows = {}
    with contextlib.suppress(FileNotFoundError):
        with open(path, newline="", encoding="utf-8") as f:
            for record in csv.DictReader(f):
                job = jobs_by_file.get(record.get("file"))
                if job is None:
                    continue
                rows[job] = Row(job, settings, _float(record.get("likeness")),
                                _float(record.get("prompt_adherence")), _float(record.get("preservation")),
                                record.get("note") or "")
    return rows


def load_image(path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def score(jobs, folder, faces, encoder, clip, batch=8) -> dict:
    """{job: Row-values (likeness, adherence, preservation, note)} for rendered `jobs` (images in `folder`).

    Scored by pulid.scoring.score_batch, as Evaluate PuLID Batch scores, in chunks of one face (its photo is
    the reference). Baselines first, so each is embedded once however many PuLID images share it; one scored
    in an earlier run (not in `jobs`) is embedded when first needed.
    """
    import itertools

    import torch
    from pulid.scoring import score_batch
    from pulid.tradeoff import image_embeddings

    results = dict.fromkeys(jobs)
    baselines = {}  # file name -> CLIP embedding
    ordered = sorted(jobs, key=lambda job: (not job.baseline, job.face or ""))
    for face, group in itertools.groupby(ordered, key=lambda job: job.face):
        group = list(group)
        references = None if face is None else [load_image(faces[face])]
        for start in range(0, len(group), batch):
            chunk = group[start:start + batch]
            base = None
            if face is not None:
                missing = sorted({job.baseline_job.name for job in chunk} - set(baselines))
                if missing:
                    found = image_embeddings(clip.vision, [load_image(folder / name) for name in missing])
                    baselines.update(zip(missing, found))
                base = torch.stack([baselines[job.baseline_job.name] for job in chunk])
            scores = score_batch(clip, [load_image(folder / job.name) for job in chunk], [job.prompt for job in chunk],
                                 encoder=encoder, references=references, baseline_embeddings=base)
            for i, job in enumerate(chunk):
                if job.baseline:
                    baselines[job.name] = scores.embeddings[i]
                results[job] = {"likeness": scores.likeness[i], "adherence": scores.adherence[i],
                                "preservation": None if base is None else scores.preservation[i],
                                "note": scores.notes[i]}
    return results


def mean_sd(values):
    """(mean, sample standard deviation; 0 for one value) of the values that exist, or (None, None)."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def chart_groups(rows):
    """[(label, rows)] per face, method and weight: each becomes one point (mean and sd over prompts and seeds)."""
    groups = {}
    for row in rows:
        if row.job.baseline:
            continue
        groups.setdefault((row.job.face, row.job.method, row.job.weight), []).append(row)
    return [(f"{face} {method} {format_weight(weight)}", members)
            for (face, method, weight), members in groups.items()]


def chart_points(rows):
    from pulid.chart import ChartPoint

    points = []
    for label, members in chart_groups(rows):
        likeness, likeness_sd = mean_sd([r.likeness for r in members])
        adherence, adherence_sd = mean_sd([r.adherence for r in members])
        preserved, _ = mean_sd([r.preservation for r in members])
        points.append(ChartPoint(label=label, likeness=likeness, adherence=adherence, preservation=preserved,
                                 likeness_sd=likeness_sd, adherence_sd=adherence_sd))
    return points
