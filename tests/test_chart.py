"""pulid.chart: what the trade-off chart draws (points, labels, colours, the no-face strip) and that the picture
follows the data."""
import numpy as np
import pytest

from pulid.chart import NO_BASELINE_COLOUR, ChartPoint, captioned, chart_data, tradeoff_chart

POINTS = [
    ChartPoint("w 0 baseline", 0.10, 30.0, 1.0),
    ChartPoint("w 0.6 fidelity", 0.55, 28.0, 0.85, likeness_sd=0.03, adherence_sd=0.8),
    ChartPoint("w 1.0 style", None, 27.0, 0.70, adherence_sd=0.5),
    ChartPoint("no baseline one", 0.40, 29.0, None),
]


def test_chart_data_places_every_point_and_keeps_the_faceless_apart():
    data = chart_data(POINTS)
    assert [p.label for p in data.faces] == ["w 0 baseline", "w 0.6 fidelity", "no baseline one"]
    assert [(p.x, p.y) for p in data.faces] == [(30.0, 0.10), (28.0, 0.55), (29.0, 0.40)]
    assert [(p.label, p.x, p.y) for p in data.no_face] == [("w 1.0 style", 27.0, None)]
    assert (data.faces[1].xerr, data.faces[1].yerr) == (0.8, 0.03) and data.faces[0].xerr == 0.0
    assert data.no_face[0].xerr == 0.5


def test_colour_is_preservation_and_grey_without_baseline():
    data = chart_data(POINTS)
    assert data.colour_range == (0.70, 1.0)
    assert data.faces[2].colour == NO_BASELINE_COLOUR and data.no_baseline
    colours = {p.label: p.colour for p in data.faces + data.no_face}
    assert len({colours["w 0 baseline"], colours["w 0.6 fidelity"], colours["w 1.0 style"]}) == 3
    assert NO_BASELINE_COLOUR not in (colours["w 0 baseline"], colours["w 1.0 style"])
    # Brighter is more preserved (viridis: dark purple low, yellow high).
    assert sum(colours["w 0 baseline"][:3]) > sum(colours["w 0.6 fidelity"][:3]) > sum(colours["w 1.0 style"][:3])
    flat = chart_data([ChartPoint("a", 0.5, 25.0, 0.9), ChartPoint("b", 0.6, 26.0, 0.9)])
    assert flat.colour_range[1] - flat.colour_range[0] == pytest.approx(0.1) and not flat.no_baseline
    none = chart_data([ChartPoint("a", 0.5, 25.0, None)])
    assert none.colour_range is None and none.no_baseline


def test_picture_has_the_size_asked_for():
    image = tradeoff_chart(POINTS, title="a portrait", size=(640, 480))
    assert image.shape == (480, 640, 3) and image.dtype == np.uint8
    assert tradeoff_chart(POINTS).shape == (768, 1024, 3)
    assert tradeoff_chart(POINTS, size=(333, 257)).shape == (257, 333, 3)


def test_a_long_title_is_cut_to_the_picture_width():
    """A prompt-long title keeps to one line inside the picture: the outermost columns of the title band stay
    white (drawn whole, it would run off both sides)."""
    prompt = ", ".join(["portrait photo of a woman reading in a sunlit cafe, watercolor painting"] * 3)
    for size in ((1024, 768), (512, 384)):
        image = tradeoff_chart(POINTS, title=prompt, size=size)
        band = image[: size[1] // 12]
        assert (band < 128).any(), "no title drawn"
        edges = np.concatenate([band[:, :4], band[:, -4:]], axis=1)
        assert (edges > 240).all(), "the title runs off the picture"


def _changed(a, b):
    return float((np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 32).mean())


def test_picture_follows_the_data():
    size = (512, 384)
    base = tradeoff_chart(POINTS, size=size)
    assert (base < 200).any() and (base > 250).any()  # something drawn on a white page
    assert np.array_equal(base, tradeoff_chart(POINTS, size=size))  # deterministic
    moved = list(POINTS)
    moved[1] = ChartPoint("w 0.6 fidelity", 0.30, 29.5, 0.85, likeness_sd=0.03, adherence_sd=0.8)
    recoloured = list(POINTS)
    recoloured[3] = ChartPoint("no baseline one", 0.40, 29.0, 0.8)
    relabelled = list(POINTS)
    relabelled[0] = ChartPoint("something else entirely", 0.10, 30.0, 1.0)
    for other in (moved, recoloured, relabelled, POINTS[:2], [p for p in POINTS if p.likeness is not None]):
        assert _changed(base, tradeoff_chart(other, size=size)) > 0.001
    assert _changed(base, tradeoff_chart(POINTS, title="title", size=size)) > 0.001


def test_no_face_anywhere_and_empty_still_draw():
    only_faceless = tradeoff_chart([ChartPoint("a", None, 25.0, None)], size=(400, 300))
    assert only_faceless.shape == (300, 400, 3)
    assert tradeoff_chart([], size=(400, 300)).shape == (300, 400, 3)


def test_captioned_adds_a_band_under_the_image():
    image = np.zeros((64, 96, 3), np.float32)
    out = captioned(image, ["w 0.6 fidelity", "likeness 0.55"])
    assert out.shape[1:] == (96, 3) and out.shape[0] > 64 and out.dtype == np.uint8
    assert np.array_equal(out[:64], np.zeros((64, 96, 3), np.uint8))
    assert (out[64:] > 128).any()  # the text
