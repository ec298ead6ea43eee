"""ViCrop's adaptive multi-scale box, on hand-made maps whose answers are worked out below.

Geometry of most cases: a 480 x 480 image on a 12 x 12 grid (40-px cells), base side b = 80, so
the windows are 2 cells (r = 1, 1.2, 1.4), 3 cells (r = 1.6, 1.8) and 4 cells (r = 2).
"""

from __future__ import annotations

import numpy as np
import pytest

from laser_core.adapters import ImageGeometry, grid_cell_boxes
from laser_core.baselines.vicrop import vicrop_box


def _geometry(
    image_size: tuple[int, int],
    grid: tuple[int, int],
    covered: tuple[float, float, float, float] | None = None,
) -> ImageGeometry:
    width, height = image_size
    region = covered or (0.0, 0.0, float(width), float(height))
    return ImageGeometry(image_size, grid, grid_cell_boxes(grid, region, image_size), region)


SQUARE = _geometry((480, 480), (12, 12))


def test_a_single_peak_takes_the_smallest_window_first_in_scan_order() -> None:
    heat = np.zeros((12, 12))
    heat[5, 7] = 1.0
    placed = vicrop_box(heat, SQUARE, base=80)
    # 2-cell windows: sharpness (1 - mean(0, 1, 0, 1)) / 4 = 0.125 beats 3 cells (0.5 / 9) and
    # 4 cells (0.5 / 16); r = 1, 1.2 and 1.4 tie and the smallest wins. The first window holding
    # the peak, x outer then y inner, is cells x 6-7, y 4-5: centred at (280, 200).
    assert placed.ratio == 1.0 and placed.window == (2, 2)
    assert placed.sharpness == pytest.approx(0.125)
    assert placed.box == (240, 160, 320, 240)


def _two_peaks(narrow: float) -> np.ndarray:
    heat = np.zeros((12, 12))
    heat[1:4, 1:4] = 1.0  # a 3 x 3 blob at the top left
    heat[8:10, 8:10] = narrow  # a 2 x 2 peak at the bottom right
    return heat


def test_a_bright_narrow_peak_wins_with_the_small_window() -> None:
    placed = vicrop_box(_two_peaks(narrow=2.0), SQUARE, base=80)
    # r = 1: the narrow peak exactly, sum 8, neighbours 4 each: (8 - 4) / 4 = 1.0.
    # r = 1.6: the blob exactly, sum 9, neighbours 6 each: 3 / 9. r = 2: 0 (its right and lower
    # neighbours hold the blob too).
    assert (placed.ratio, placed.window) == (1.0, (2, 2))
    assert placed.sharpness == pytest.approx(1.0)
    assert placed.box == (320, 320, 400, 400)


def test_a_wider_peak_wins_with_a_larger_window() -> None:
    placed = vicrop_box(_two_peaks(narrow=1.0), SQUARE, base=80)
    # r = 1: the first 2 x 2 window of sum 4 is inside the blob, (4 - 3) / 4 = 0.25; r = 1.6: the
    # blob exactly, 3 / 9 = 0.33 wins; the 128-px square is centred on cells 1-3 (x, y = 100).
    assert (placed.ratio, placed.window) == (1.6, (3, 3))
    assert placed.sharpness == pytest.approx(1 / 3)
    assert placed.box == (36, 36, 164, 164)


def test_a_peak_at_the_border_is_shifted_inside_the_image() -> None:
    heat = np.zeros((12, 12))
    heat[0, 11] = 1.0  # the top-right cell
    placed = vicrop_box(heat, SQUARE, base=100)  # 2-cell windows, a 100-px square
    # The window is cells x 10-11, y 0-1, centred at (440, 40); the square's half side is 50, so
    # the centre moves to (430, 50) and the box ends at the image's right and top edges.
    assert placed.ratio == 1.0
    assert placed.box == (380, 0, 480, 100)


def test_a_map_wider_than_tall() -> None:
    wide = _geometry((640, 320), (8, 16))  # any-resolution: 40-px cells over the image
    heat = np.zeros((8, 16))
    heat[3, 12] = 1.0
    placed = vicrop_box(heat, wide, base=80)
    assert placed.window == (2, 2) and placed.box == (440, 80, 520, 160)


def test_padding_cells_carry_no_mass() -> None:
    # LLaVA pads 640 x 320 to a 640 square: the grid spans y from -160 to 480, rows 0-3 and 12-15
    # lie on padding only. A huge value there must not move the box.
    padded = _geometry((640, 320), (16, 16), covered=(0.0, -160.0, 640.0, 480.0))
    heat = np.zeros((16, 16))
    heat[6, 5] = 1.0  # y 80-120, x 200-240 in the image
    heat[1, 10] = 1e6  # padding
    placed = vicrop_box(heat, padded, base=80)
    assert placed.box == (160, 40, 240, 120)


def test_a_grid_the_first_window_covers_gives_the_whole_image() -> None:
    small = _geometry((100, 100), (4, 4))  # 25-px cells: b = 336 covers all 4 x 4 cells
    placed = vicrop_box(np.random.default_rng(0).random((4, 4)), small, base=336)
    assert placed.box == (0, 0, 100, 100) and placed.ratio == 1.0 and placed.sharpness == 0.0


def test_cells_larger_than_the_base_side_still_give_a_one_cell_window() -> None:
    huge = _geometry((2000, 2000), (4, 4))  # 500-px cells, b = 336: int(336 / 500) = 0 cells
    heat = np.zeros((4, 4))
    heat[1, 2] = 1.0
    placed = vicrop_box(heat, huge, base=336)
    assert placed.window == (1, 1)
    assert placed.box == (1082, 582, 1418, 918)  # 336-px square on the cell's centre (1250, 750)


def test_equal_windows_go_to_the_first_in_the_authors_scan_x_outer_then_y() -> None:
    heat = np.zeros((12, 12))
    heat[8, 1] = 1.0  # left and low
    heat[1, 8] = 1.0  # right and high: first if y were the outer loop
    placed = vicrop_box(heat, SQUARE, base=80)
    assert placed.box == (0, 280, 80, 360)  # the window x 0-1, y 7-8, on the left peak
