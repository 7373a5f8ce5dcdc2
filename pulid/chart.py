"""The trade-off chart: likeness against prompt adherence, one labelled point per image.

PuLID's weight and method move an image along a trade-off: more of the identity (likeness, ArcFace cosine to
the reference) costs some of the prompt (prompt adherence, CLIP-T) and of the picture the model would have
made without PuLID (preservation, CLIP image cosine to a baseline). The chart puts the first two on its axes
and the third in the points' colour, so one picture shows which setting buys the most likeness for the least
loss. Images where no face was found are never dropped: they are drawn apart, in a strip under the plot at
their prompt adherence, marked "no face".

Drawn with matplotlib's object API on an Agg canvas (no pyplot, no global state, no display needed), with
fonts large enough to read at ComfyUI's preview size.
"""
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .image_input import to_rgb_uint8

NO_BASELINE_COLOUR = (0.62, 0.62, 0.62, 1.0)
"""Points without a preservation value (no baseline given)."""
COLOURMAP = "viridis"
NO_FACE = "no face"
NO_BASELINE = "no baseline"


@dataclass
class ChartPoint:
    """One image (or, with the *_sd fields, the mean ± sd of a group of images)."""

    label: str
    likeness: float | None  # face similarity; None = no face found
    adherence: float  # prompt adherence (CLIP-T, 100 x cosine)
    preservation: float | None  # CLIP image cosine to the baseline; None = no baseline
    likeness_sd: float | None = None
    adherence_sd: float | None = None


@dataclass
class PlacedPoint:
    """A point as drawn: where, its label and colour (RGBA 0..1), its error bars (0 = none)."""

    label: str
    x: float
    y: float | None  # None for the points of the no-face strip
    colour: tuple
    xerr: float = 0.0
    yerr: float = 0.0


@dataclass
class ChartData:
    """What `tradeoff_chart` draws: the scored points, the no-face ones apart, the colour scale."""

    faces: list = field(default_factory=list)  # PlacedPoint with y = likeness
    no_face: list = field(default_factory=list)  # PlacedPoint with y None, drawn in the strip
    colour_range: tuple | None = None  # (low, high) of the colourbar; None when no point has a preservation
    no_baseline: bool = False  # some point is grey: the legend says "no baseline"


def _number(value):
    return value is not None and math.isfinite(float(value))


def colour_range(values):
    """(low, high) for the colourbar: the values' span, widened to at least 0.1 and kept inside [-1, 1]."""
    if not values:
        return None
    low, high = min(values), max(values)
    if high - low < 0.1:
        middle = (low + high) / 2
        low, high = middle - 0.05, middle + 0.05
    return max(-1.0, low), min(1.0, high)


def chart_data(points):
    """The points placed and coloured, as `tradeoff_chart` draws them."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize

    points = list(points)
    preserved = [float(p.preservation) for p in points if _number(p.preservation)]
    span = colour_range(preserved)
    cmap = colormaps[COLOURMAP]
    norm = Normalize(*span) if span else None
    data = ChartData(colour_range=span)
    for point in points:
        if _number(point.preservation):
            colour = tuple(float(c) for c in cmap(norm(float(point.preservation))))
        else:
            colour, data.no_baseline = NO_BASELINE_COLOUR, True
        xerr = float(point.adherence_sd) if _number(point.adherence_sd) else 0.0
        placed = PlacedPoint(str(point.label), float(point.adherence), None, colour, xerr=xerr)
        if _number(point.likeness):
            placed.y = float(point.likeness)
            placed.yerr = float(point.likeness_sd) if _number(point.likeness_sd) else 0.0
            data.faces.append(placed)
        else:
            data.no_face.append(placed)
    return data


def _x_limits(data):
    xs = [p.x - p.xerr for p in data.faces + data.no_face] + [p.x + p.xerr for p in data.faces + data.no_face]
    if not xs:
        return 0.0, 40.0
    low, high = min(xs), max(xs)
    pad = max((high - low) * 0.12, 1.0)
    return low - pad, high + pad


def _y_limits(data):
    ys = [p.y - p.yerr for p in data.faces] + [p.y + p.yerr for p in data.faces]
    if not ys:
        return 0.0, 1.0
    low, high = min(ys), max(ys)
    pad = max((high - low) * 0.15, 0.03)
    return low - pad, high + pad


def _label_offsets(points, font, xlim):
    """(dx, dy, alignment) of each label in points: above and below in turn, so labels of close points do not sit
    on each other; left of the points in the right half, so no label runs off the plot."""
    order = sorted(range(len(points)), key=lambda i: (points[i].x, points[i].y or 0.0))
    middle = (xlim[0] + xlim[1]) / 2
    offsets = [None] * len(points)
    for rank, index in enumerate(order):
        right = points[index].x > middle
        offsets[index] = (-0.5 * font if right else 0.5 * font, 0.7 * font if rank % 2 == 0 else -1.5 * font,
                          "right" if right else "left")
    return offsets


def tradeoff_chart(points, title="", size=(1024, 768)):
    """The chart as an RGB uint8 array [height, width, 3]; size is (width, height) in pixels.

    ``title`` (e.g. the prompt) is drawn on one line, cut at a word boundary with "…" where it is wider than
    the picture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    width, height = int(size[0]), int(size[1])
    data = chart_data(points)
    dpi = 100
    font = max(9.0, 20.0 * min(width / 1024, height / 768))
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor="white")
    FigureCanvasAgg(figure)
    columns = [30, 1] if data.colour_range else [1]
    rows = [5, 1] if data.no_face else [1]
    grid = figure.add_gridspec(len(rows), len(columns), height_ratios=rows, width_ratios=columns,
                               left=0.1, right=0.9 if data.colour_range else 0.97, top=0.9 if title else 0.96,
                               bottom=0.1, hspace=0.08, wspace=0.04)
    axes = figure.add_subplot(grid[0, 0])
    axes.tick_params(labelsize=0.8 * font)
    axes.grid(True, alpha=0.3)
    axes.set_ylabel("likeness (face sim)", fontsize=font)
    xlim = _x_limits(data)
    axes.set_xlim(*xlim)
    axes.set_ylim(*_y_limits(data))
    marker = font * 0.9
    for point, (dx, dy, align) in zip(data.faces, _label_offsets(data.faces, font, xlim)):
        if point.xerr or point.yerr:
            axes.errorbar([point.x], [point.y], xerr=[point.xerr] if point.xerr else None,
                          yerr=[point.yerr] if point.yerr else None, fmt="none", ecolor=point.colour,
                          elinewidth=2, capsize=font * 0.3, zorder=2)
        axes.plot([point.x], [point.y], "o", markersize=marker, color=point.colour, markeredgecolor="black",
                  zorder=3)
        axes.annotate(point.label, (point.x, point.y), xytext=(dx, dy), textcoords="offset points", ha=align,
                      fontsize=0.8 * font, zorder=4)
    if not data.faces:
        axes.text(0.5, 0.5, "no face in any image", transform=axes.transAxes, ha="center", va="center",
                  fontsize=font, color="dimgray")
    if data.no_face:
        axes.tick_params(labelbottom=False)
        strip = figure.add_subplot(grid[1, 0], sharex=axes)
        strip.set_ylim(-1, 1)
        strip.set_yticks([])
        strip.set_facecolor("#f3f3f3")
        strip.tick_params(labelsize=0.8 * font)
        strip.set_ylabel(NO_FACE, fontsize=0.8 * font, rotation=0, ha="right", va="center", color="firebrick")
        for point, (dx, dy, align) in zip(data.no_face, _label_offsets(data.no_face, 0.6 * font, xlim)):
            if point.xerr:
                strip.errorbar([point.x], [0], xerr=[point.xerr], fmt="none", ecolor=point.colour, elinewidth=2,
                               capsize=font * 0.3, zorder=2)
            strip.plot([point.x], [0], "X", markersize=marker, color=point.colour, markeredgecolor="black",
                       zorder=3)
            strip.annotate(point.label, (point.x, 0), xytext=(dx, dy), textcoords="offset points", ha=align,
                           fontsize=0.7 * font, zorder=4)
        bottom = strip
    else:
        bottom = axes
    bottom.set_xlabel("prompt adherence (CLIP-T)", fontsize=font)
    bottom.set_xlim(*xlim)
    if data.colour_range:
        bar_axes = figure.add_subplot(grid[:, 1])
        bar = figure.colorbar(ScalarMappable(Normalize(*data.colour_range), COLOURMAP), cax=bar_axes)
        bar.set_label("preservation (CLIP cosine to baseline)", fontsize=0.8 * font)
        bar.ax.tick_params(labelsize=0.7 * font)
    if data.no_baseline:
        axes.legend(handles=[Line2D([], [], linestyle="", marker="o", markersize=marker,
                                    color=NO_BASELINE_COLOUR, markeredgecolor="black", label=NO_BASELINE)],
                    fontsize=0.8 * font, loc="best")
    if title:
        _fitted_title(figure, title, 1.1 * font)
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[:, :, :3]
    return _fit(pixels, width, height)


def _fitted_title(figure, title, fontsize):
    """The figure's title on one line: as many whole words as fit in its width (prompts run long)."""
    words = title.split()
    text = figure.suptitle(" ".join(words), fontsize=fontsize)
    renderer = figure.canvas.get_renderer()
    room = 0.96 * figure.bbox.width
    while len(words) > 1 and text.get_window_extent(renderer).width > room:
        words.pop()
        text.set_text(" ".join(words) + " …")
    return text


def _fit(pixels, width, height):
    """Exactly height x width: the canvas may round a side by a pixel."""
    out = np.full((height, width, 3), 255, np.uint8)
    h, w = min(height, pixels.shape[0]), min(width, pixels.shape[1])
    out[:h, :w] = pixels[:h, :w]
    return out


def captioned(image, lines, colour=(255, 255, 255)):
    """The image (RGB uint8, any input `to_rgb_uint8` takes) with a dark band under it holding `lines` of text."""
    image = to_rgb_uint8(image)
    height, width = image.shape[:2]
    scale = max(0.35, width / 900)
    thickness = max(1, round(width / 600))
    line_height = int(30 * scale) + 6
    band = np.full((line_height * len(lines) + 8, width, 3), 24, np.uint8)
    for row, text in enumerate(lines):
        cv2.putText(band, text, (6, line_height * (row + 1) - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, colour,
                    thickness, cv2.LINE_AA)
    return np.concatenate([image, band], axis=0)
