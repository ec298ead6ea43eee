"""Overlay geometry: each cell's colour fills exactly its footprint, at any display size."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from viz import OverlayCanvas, colormap_lut, overlay_heatmap

GREY = 128


def grid_boxes(width: int, height: int, rows: int, cols: int, *, pad: bool = False) -> np.ndarray:
    """Cell footprints [rows, cols, 4] of a uniform grid over the image.

    With `pad`, the grid covers the image padded to a square (LLaVA-1.5 style) and each box is
    clipped to the image, so border cells may be partial or have zero area.
    """
    side = max(width, height) if pad else None
    span_x, span_y = (side, side) if pad else (width, height)
    xs = np.linspace(0, span_x, cols + 1) - (span_x - width) / 2
    ys = np.linspace(0, span_y, rows + 1) - (span_y - height) / 2
    boxes = np.zeros((rows, cols, 4))
    boxes[..., 0] = np.clip(xs[:-1], 0, width)[None, :]
    boxes[..., 2] = np.clip(xs[1:], 0, width)[None, :]
    boxes[..., 1] = np.clip(ys[:-1], 0, height)[:, None]
    boxes[..., 3] = np.clip(ys[1:], 0, height)[:, None]
    return boxes


def footprint_mask(
    box: np.ndarray, source: tuple[int, int], display: tuple[int, int]
) -> np.ndarray:
    """bool [h, w]: display pixels whose centre lies inside `box` scaled to the display."""
    sx, sy = display[0] / source[0], display[1] / source[1]
    x = np.arange(display[0]) + 0.5
    y = np.arange(display[1]) + 0.5
    in_x = (box[0] * sx <= x) & (x < box[2] * sx)
    in_y = (box[1] * sy <= y) & (y < box[3] * sy)
    return in_y[:, None] & in_x[None, :]


def grey_image(width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height), (GREY, GREY, GREY))


def blended(level: int, opacity: float) -> np.ndarray:
    """Float reference for grey * (1 - opacity) + colormap[level] * opacity."""
    return GREY * (1 - opacity) + colormap_lut("magma")[level].astype(float) * opacity


def hot_mask(frame: np.ndarray, opacity: float) -> np.ndarray:
    """bool [h, w]: pixels painted with the top colour of magma."""
    return (np.abs(frame.astype(float) - blended(255, opacity)) <= 1).all(axis=2)


@pytest.mark.parametrize(
    ("width", "height", "rows", "cols", "cell", "pad"),
    [
        (300, 200, 2, 2, (0, 1), False),  # non-square image, square grid
        (400, 100, 2, 2, (0, 1), True),  # LLaVA padding: both rows partly clipped
        (400, 200, 4, 4, (1, 2), True),  # LLaVA padding: rows 0 and 3 have zero area
        (200, 500, 4, 4, (2, 1), True),  # tall image: columns 0 and 3 have zero area
        (350, 260, 3, 5, (2, 4), False),  # Qwen-like: non-square cells
    ],
)
def test_mass_on_one_cell_colours_exactly_its_footprint(width, height, rows, cols, cell, pad):
    boxes = grid_boxes(width, height, rows, cols, pad=pad)
    heat = np.zeros((rows, cols))
    heat[cell] = 1.0
    frame = overlay_heatmap(grey_image(width, height), heat, boxes, opacity=0.5, vmin=0, vmax=1)

    assert frame.shape == (height, width, 3) and frame.dtype == np.uint8
    expected = footprint_mask(boxes[cell], (width, height), (width, height))
    assert expected.sum() > 0
    np.testing.assert_array_equal(hot_mask(frame, 0.5), expected)
    # Every other pixel lies in a cold cell: painted with the lowest colour.
    cold = (np.abs(frame.astype(float) - blended(0, 0.5)) <= 1).all(axis=2)
    np.testing.assert_array_equal(cold, ~expected)


def test_zero_area_cells_are_skipped_and_do_not_set_the_range():
    boxes = grid_boxes(400, 200, 4, 4, pad=True)  # rows 0 and 3 lie in the padding
    heat = np.zeros((4, 4))
    heat[0, :] = heat[3, :] = 50.0  # large values only in invisible cells
    heat[1, 2] = 1.0
    canvas = OverlayCanvas(grey_image(400, 200), boxes)

    assert canvas.value_range(heat) == (0.0, 1.0)
    frame = canvas.render(heat, opacity=0.5)
    expected = footprint_mask(boxes[1, 2], (400, 200), (400, 200))
    np.testing.assert_array_equal(hot_mask(frame, 0.5), expected)


def test_pixels_in_no_cell_keep_the_image():
    boxes = grid_boxes(200, 200, 2, 2)
    boxes[..., [0, 2]] = boxes[..., [0, 2]] / 2 + 50  # the grid covers x in [50, 150) only
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 300, 3), np.uint8))
    frame = overlay_heatmap(image, np.ones((2, 2)), boxes, opacity=1.0)

    original = np.asarray(image)
    np.testing.assert_array_equal(frame[:, :50], original[:, :50])
    np.testing.assert_array_equal(frame[:, 150:], original[:, 150:])
    assert (frame[:, 50:150] != original[:, 50:150]).any()


def test_grid_with_a_gap_leaves_the_gap_untouched():
    boxes = grid_boxes(300, 100, 1, 3)
    boxes[0, 1, 2] = 150  # middle cell ends early: x in [150, 200) is in no cell
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (100, 300, 3), np.uint8))
    frame = overlay_heatmap(image, np.ones((1, 3)), boxes, opacity=1.0)

    np.testing.assert_array_equal(frame[:, 150:200], np.asarray(image)[:, 150:200])
    assert (frame[:, :150] != np.asarray(image)[:, :150]).all(axis=2).any()


@pytest.mark.parametrize(
    ("width", "height", "max_side", "pad"),
    [(3000, 1000, 600, False), (1000, 700, 333, True), (640, 480, 1024, True)],
)
def test_max_side_keeps_aspect_and_geometry(width, height, max_side, pad):
    rows = cols = 24 if pad else 2
    boxes = grid_boxes(width, height, rows, cols, pad=pad)
    cell = (13, 7) if pad else (0, 1)
    heat = np.zeros((rows, cols))
    heat[cell] = 2.0
    canvas = OverlayCanvas(grey_image(width, height), boxes, max_side=max_side)
    frame = canvas.render(heat, opacity=0.5, vmin=0.0)

    display = canvas.display_size
    assert max(display) == min(max_side, max(width, height))
    assert display[0] / display[1] == pytest.approx(width / height, rel=0.01)
    assert frame.shape == (display[1], display[0], 3)
    expected = footprint_mask(boxes[cell], (width, height), display)
    np.testing.assert_array_equal(hot_mask(frame, 0.5), expected)


@pytest.mark.parametrize("value", [0.0, 3.7])
def test_flat_heat_paints_the_lowest_colour_without_nan(value):
    boxes = grid_boxes(120, 80, 3, 3)
    frame = overlay_heatmap(grey_image(120, 80), np.full((3, 3), value), boxes, opacity=0.5)

    assert frame.dtype == np.uint8
    assert (np.abs(frame.astype(float) - blended(0, 0.5)) <= 1).all()


def test_non_finite_heat_does_not_crash():
    heat = np.array([[np.nan, 1.0], [np.inf, 0.0]])
    frame = overlay_heatmap(grey_image(60, 40), heat, grid_boxes(60, 40, 2, 2), smooth=True)
    assert frame.shape == (40, 60, 3)


def test_smooth_peaks_inside_the_hot_cell_and_spares_uncovered_pixels():
    boxes = grid_boxes(400, 200, 4, 4, pad=True)
    boxes[..., [0, 2]] = boxes[..., [0, 2]] / 2 + 100  # the grid covers x in [100, 300) only
    heat = np.zeros((4, 4))
    heat[1, 2] = 1.0
    image = Image.fromarray(np.random.default_rng(4).integers(0, 256, (200, 400, 3), np.uint8))
    frame = OverlayCanvas(image, boxes).render(heat, opacity=1.0, smooth=True)

    brightness = frame[:, 100:300].astype(int).sum(axis=2)  # magma brightens monotonically
    peak_y, peak_x = np.unravel_index(brightness.argmax(), brightness.shape)
    assert footprint_mask(boxes[1, 2], (400, 200), (400, 200))[peak_y, peak_x + 100]
    distance = np.abs(colormap_lut("magma").astype(int) - frame[peak_y, peak_x + 100]).sum(axis=1)
    assert distance.argmin() >= 250  # the peak shows (nearly) the top colour
    np.testing.assert_array_equal(frame[:, :100], np.asarray(image)[:, :100])
    np.testing.assert_array_equal(frame[:, 300:], np.asarray(image)[:, 300:])


def test_opacity_zero_shows_the_image_and_render_keeps_base_intact():
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (90, 160, 3), np.uint8))
    canvas = OverlayCanvas(image, grid_boxes(160, 90, 3, 4))
    heat = np.random.default_rng(3).random((3, 4))

    np.testing.assert_array_equal(canvas.render(heat, opacity=0.0), np.asarray(image))
    first = canvas.render(heat, opacity=0.7)
    canvas.render(heat, opacity=0.3)  # a different cached base term in between
    np.testing.assert_array_equal(canvas.render(heat, opacity=0.7), first)
    np.testing.assert_array_equal(canvas.base, np.asarray(image))


def test_value_range_honours_given_limits_and_rejects_inverted_ones():
    canvas = OverlayCanvas(grey_image(40, 40), grid_boxes(40, 40, 2, 2))
    heat = np.array([[0.2, 0.4], [0.6, 0.8]])

    assert canvas.value_range(heat) == pytest.approx((0.2, 0.8))
    assert canvas.value_range(heat, vmin=0.0) == pytest.approx((0.0, 0.8))
    assert canvas.value_range(heat, vmax=0.1) == pytest.approx((0.1, 0.1))
    with pytest.raises(ValueError, match="vmax"):
        canvas.value_range(heat, vmin=1.0, vmax=0.5)


def test_bad_inputs_raise_clear_errors():
    canvas = OverlayCanvas(grey_image(40, 40), grid_boxes(40, 40, 2, 2))
    with pytest.raises(ValueError, match="shape"):
        canvas.render(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="opacity"):
        canvas.render(np.zeros((2, 2)), opacity=1.5)
    with pytest.raises(ValueError, match="cell_boxes"):
        OverlayCanvas(grey_image(40, 40), np.zeros((2, 2)))
