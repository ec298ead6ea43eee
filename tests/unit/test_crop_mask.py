"""Stage 2 (crop) and stage 3 (counterfactual) on hand-made maps and grids."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from laser_core import box_mass_share, crop_box, crop_size, mask_cells, top_cells
from laser_core.adapters import grid_cell_boxes
from laser_core.mask import _blur


def test_crop_size_rule_floor_and_cap() -> None:
    assert crop_size(1000, 800) == (500, 400)
    assert crop_size(300, 260) == (224, 224)  # the 224 floor
    assert crop_size(200, 100) == (200, 100)  # capped at the image
    assert crop_size(1000, 800, ratio=0.25, minimum=100) == (250, 200)


def test_crop_holds_the_most_mass_and_stays_inside() -> None:
    boxes = grid_cell_boxes((4, 4), (0, 0, 800, 600), (800, 600))
    heat = np.zeros((4, 4))
    heat[3, 0] = 1.0  # all mass in the bottom-left cell: x 0-200, y 450-600
    box = crop_box(heat, boxes, (800, 600))
    x0, y0, x1, y1 = box
    assert (x1 - x0, y1 - y0) == (400, 300)
    assert 0 <= x0 and 0 <= y0 and x1 <= 800 and y1 <= 600
    assert x0 == 0 and y1 == 600  # contains the whole cell
    assert box_mass_share(heat, boxes, box) == pytest.approx(1.0)


def test_crop_maximises_mass_by_brute_force() -> None:
    rng = np.random.default_rng(1)
    boxes = grid_cell_boxes((5, 7), (0, 0, 350, 250), (350, 250))
    heat = rng.random((5, 7)) ** 4
    box = crop_box(heat, boxes, (350, 250), ratio=0.3, minimum=60)
    best = max(
        box_mass_share(heat, boxes, (x, y, x + 105, y + 75))
        for x in range(0, 350 - 105 + 1, 5)
        for y in range(0, 250 - 75 + 1, 5)
    )
    assert box_mass_share(heat, boxes, box) >= best - 1e-9


def test_ties_go_to_the_window_nearest_the_centre_of_mass() -> None:
    boxes = grid_cell_boxes((1, 3), (0, 0, 900, 300), (900, 300))
    heat = np.array([[0.0, 1.0, 0.0]])  # one cell, x 300-600: every window holding it ties
    box = crop_box(heat, boxes, (900, 300), ratio=0.5, minimum=1)
    assert box == (225, 75, 675, 225)  # centred on the centre of mass (450, 150)
    uniform = crop_box(np.zeros((1, 3)), boxes, (900, 300), ratio=0.5, minimum=1)
    assert uniform[0] + uniform[2] == 900  # no mass at all: the centre of the image


def test_padding_cells_carry_no_mass() -> None:
    # LLaVA-style: a 400 x 200 image padded to 400 x 400; the top grid row is all padding.
    boxes = grid_cell_boxes((4, 4), (0, -100, 400, 300), (400, 200))
    assert np.all(boxes[0, :, 3] - boxes[0, :, 1] == 0)
    heat = np.zeros((4, 4))
    heat[0, 3] = 100.0  # huge attention on a padding cell
    heat[2, 0] = 1.0  # y 100-200 in the image, x 0-100
    box = crop_box(heat, boxes, (400, 200), ratio=0.5, minimum=1)
    assert box[0] == 0 and box[3] == 200


def test_top_cells_count_fraction_and_ties() -> None:
    heat = np.array([[0.1, 0.5], [0.5, 0.0]])
    assert top_cells(heat, 1).tolist() == [[0, 1]]  # tie: row-major first
    assert top_cells(heat, 2).tolist() == [[0, 1], [1, 0]]
    assert len(top_cells(np.ones((24, 24)), 0.05)) == 29  # round(0.05 * 576)
    assert len(top_cells(np.ones((2, 2)), 0.05)) == 1  # at least one
    assert top_cells(np.zeros((4, 4)), 3).shape == (0, 2)  # no evidence, nothing masked
    assert top_cells(heat, 4).tolist() == [[0, 1], [1, 0], [0, 0]]  # zero cells are skipped


def test_mask_fills_exactly_the_chosen_footprints() -> None:
    image = Image.new("RGB", (40, 20), (200, 10, 10))
    boxes = grid_cell_boxes((2, 4), (0, 0, 40, 20), (40, 20))
    out = mask_cells(image, boxes, np.array([[1, 2]]), fill="mean", mean_color=(1, 2, 3))
    pixels = np.array(out)
    assert (pixels[10:20, 20:30] == (1, 2, 3)).all()
    pixels[10:20, 20:30] = (200, 10, 10)
    assert (pixels == (200, 10, 10)).all()
    assert np.asarray(image)[15, 25].tolist() == [200, 10, 10]  # the input is untouched
    black = np.asarray(mask_cells(image, boxes, np.array([[0, 0]]), fill="black"))
    assert (black[:10, :10] == 0).all()
    noisy = Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 40, 3), np.uint8))
    blurred = np.asarray(mask_cells(noisy, boxes, np.array([[0, 0]]), fill="blur"), dtype=float)
    assert blurred[:10, :10].std() < np.asarray(noisy, dtype=float)[:10, :10].std() / 2


@pytest.mark.parametrize("sigma", [2.0, 12.5, 40.0])
def test_blur_fill_keeps_the_standard_deviation_of_pils_gaussian_radius(sigma) -> None:
    impulse = np.zeros((1, 1001, 3), np.float32)
    impulse[0, 500] = 1.0
    weights = _blur(impulse, sigma)[0, :, 0]  # the kernel along x
    offsets = np.arange(weights.size) - 500
    assert weights.sum() == pytest.approx(1.0, abs=1e-4)
    spread = np.sqrt((weights * offsets**2).sum() / weights.sum())
    assert spread == pytest.approx(sigma, rel=0.03)


def test_padding_cells_are_never_masked() -> None:
    heat = np.array([[9.0, 1.0], [2.0, 3.0]])  # the brightest cell lies on padding only
    on_image = np.array([[False, True], [True, True]])
    assert top_cells(heat, 2).tolist() == [[0, 0], [1, 1]]
    assert top_cells(heat, 2, on_image=on_image).tolist() == [[1, 1], [1, 0]]
