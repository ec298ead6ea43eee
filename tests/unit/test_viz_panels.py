"""Colour bars, titled panels, boxes, masked cells and display resizing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from viz import (
    CROP_COLOR,
    MASK_COLOR,
    OverlayCanvas,
    add_colorbar,
    colormap_lut,
    display_size,
    draw_box,
    draw_cells,
    fit_for_display,
    heatmap_panel,
)
from viz.panels import _tick_labels, _ticks


def rgb(color: str) -> np.ndarray:
    return np.array(Image.new("RGB", (1, 1), color).getpixel((0, 0)))


def uniform_boxes(width: int, height: int, rows: int, cols: int) -> np.ndarray:
    xs, ys = np.linspace(0, width, cols + 1), np.linspace(0, height, rows + 1)
    boxes = np.zeros((rows, cols, 4))
    boxes[..., 0], boxes[..., 2] = xs[None, :-1], xs[None, 1:]
    boxes[..., 1], boxes[..., 3] = ys[:-1, None], ys[1:, None]
    return boxes


def contains_color(image: np.ndarray, color: np.ndarray, tolerance: int = 2) -> bool:
    return bool((np.abs(image.astype(int) - color).max(axis=2) <= tolerance).any())


def test_colorbar_adds_width_and_shows_both_ends_of_the_colormap():
    panel = np.full((300, 400, 3), 128, np.uint8)
    out = add_colorbar(panel, vmin=0.0, vmax=0.02, cmap="magma", label="attention")

    assert out.shape[0] == 300 and out.shape[1] > 400 and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :400], panel)
    strip = out[:, 400:]
    lut = colormap_lut("magma")
    assert contains_color(strip, lut[0]) and contains_color(strip, lut[255])


def test_colorbar_title_adds_a_strip_on_top_and_flat_range_works():
    panel = np.zeros((200, 200, 3), np.uint8)
    out = add_colorbar(panel, vmin=1.0, vmax=1.0, label="x", title="Raw attention · layer 12")

    assert out.shape[0] > 200
    np.testing.assert_array_equal(out[-200:, :200], panel)
    assert (out[: out.shape[0] - 200] < 128).any()  # dark title text on the white strip


def test_heatmap_panel_draws_the_crop_box_in_original_pixels():
    image = Image.new("RGB", (2000, 1000), (128, 128, 128))
    canvas = OverlayCanvas(image, uniform_boxes(2000, 1000, 4, 4), max_side=500)
    heat = np.zeros((4, 4))
    panel = heatmap_panel(canvas, heat, title="Contrastive · layer 3", box=(1000, 0, 2000, 500))

    frame = panel[-250:, :500]  # the overlay part: below the title, left of the bar
    crop = rgb(CROP_COLOR)
    assert contains_color(frame[:, 250:], crop)
    assert not contains_color(frame[:, :240], crop)  # box starts at x = 1000 / 4 = 250


def test_draw_box_outlines_inside_the_box_and_leaves_the_input_alone():
    image = np.full((100, 200, 3), 200, np.uint8)
    out = draw_box(image, (20, 10, 120, 60), color="#FF0000", width=3)

    assert (image == 200).all()
    assert (out[10:13, 30] == [255, 0, 0]).all()  # top edge, inside the box
    assert (out[30, 117:120] == [255, 0, 0]).all()  # right edge, inside the box
    assert (out[30:40, 50:90] == 200).all()  # interior untouched
    assert (out[80:, :] == 200).all() and (out[:, 130:] == 200).all()


def test_draw_box_scales_from_source_size():
    image = np.full((100, 200, 3), 200, np.uint8)
    out = draw_box(image, (1000, 0, 2000, 500), color="#FF0000", width=2, source_size=(2000, 1000))

    red = (out == [255, 0, 0]).all(axis=2)
    ys, xs = np.nonzero(red)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (100, 199, 0, 49)


def test_draw_cells_marks_only_the_given_cells_and_skips_zero_area_ones():
    image = np.full((100, 100, 3), 100, np.uint8)
    boxes = uniform_boxes(100, 100, 2, 2)
    boxes[1, 1] = (100, 100, 100, 100)  # outside the image: zero area
    out = draw_cells(image, boxes, np.array([[0, 1], [1, 1]]), color=MASK_COLOR, alpha=0.5)

    assert (out[:50, 50:] != 100).any(axis=2).all()  # tinted everywhere in cell (0, 1)
    assert (out[:50, :50] == 100).all() and (out[50:] == 100).all()
    assert contains_color(out, rgb(MASK_COLOR), tolerance=0)


def test_draw_cells_rejects_bad_alpha():
    with pytest.raises(ValueError, match="alpha"):
        draw_cells(np.zeros((10, 10, 3), np.uint8), uniform_boxes(10, 10, 1, 1), [[0, 0]], alpha=2)


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((4000, 3000), 1024, (1024, 768)),
        ((300, 8000), 1000, (38, 1000)),
        ((64, 48), 1024, (64, 48)),
    ],
)
def test_fit_for_display_keeps_aspect_and_never_upscales(size, max_side, expected):
    assert display_size(*size, max_side) == expected
    out = fit_for_display(Image.new("RGBA", size, (10, 20, 30, 255)), max_side)
    assert out.shape == (expected[1], expected[0], 3) and out.dtype == np.uint8
    assert tuple(out[expected[1] // 2, expected[0] // 2]) == (10, 20, 30)


def test_fit_for_display_accepts_greyscale_arrays():
    out = fit_for_display(np.full((50, 80), 7, np.uint8), 40)
    assert out.shape == (25, 40, 3)


@pytest.mark.parametrize(
    ("vmin", "vmax", "labels", "suffix"),
    [
        (0.0, 1.0, ["0.00", "0.25", "0.50", "0.75", "1.00"], ""),  # never "0.2" for 0.25
        (0.0, 1e-4, ["0.00", "0.25", "0.50", "0.75", "1.00"], " (×10⁻⁴)"),
        (0.0, 250.0, ["0", "80", "160", "240"], ""),
        (3.0, 3.0, ["3"], ""),
    ],
)
def test_colorbar_tick_labels_are_exact_and_scaled(vmin, vmax, labels, suffix):
    assert _tick_labels(_ticks(vmin, vmax)) == (labels, suffix)
