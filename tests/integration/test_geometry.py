"""Each visual token's grid cell maps to the original pixels it really covers.

We paint every cell of the adapter's claimed geometry a distinct colour on a non-square image,
run the real processor, and read back, for each visual token, the colour at the centre of the
pixels that token was built from. A wrong mapping (centre crop instead of padding, a shifted or
transposed grid, a wrong resize scale) gives other colours.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from laser_core import VLM, LaserConfig


def _paint_cells(
    size: tuple[int, int], cell_boxes: np.ndarray, seed: int
) -> tuple[Image.Image, np.ndarray]:
    rows, cols = cell_boxes.shape[:2]
    colours = np.random.default_rng(seed).integers(0, 256, size=(rows, cols, 3))
    pixels = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    for r in range(rows):
        for c in range(cols):
            x0, y0, x1, y1 = (int(round(v)) for v in cell_boxes[r, c])
            pixels[y0:y1, x0:x1] = colours[r, c]
    return Image.fromarray(pixels), colours


def _token_centre_colours(vlm: VLM, inputs: dict, grid: tuple[int, int]) -> np.ndarray:
    """[rows, cols, 3] colour (0-255) at the centre of each visual token's input pixels."""
    processor = vlm.adapter.image_processor
    mean = torch.tensor(processor.image_mean).view(3, 1, 1)
    std = torch.tensor(processor.image_std).view(3, 1, 1)
    pixels = inputs["pixel_values"]
    rows, cols = grid
    if pixels.ndim == 4:  # LLaVA: [1, 3, side, side]; token (r, c) is the patch at (r, c)
        image = pixels[0] * std + mean
        patch = vlm.adapter.patch_size
        centre = image[:, patch // 2 :: patch, patch // 2 :: patch]  # [3, rows, cols]
        return (centre.permute(1, 2, 0).numpy() * 255).reshape(rows, cols, 3)
    # Qwen: [patches, 3 * t * p * p], patches ordered by merged block; token k owns merge**2 rows.
    merge, patch = vlm.adapter.merge_size, vlm.adapter.patch_size
    per_token = pixels.reshape(rows * cols, merge * merge, 3, -1, patch, patch)
    # The centre of a merged block is the corner shared by its patches; take patch 0's last pixel.
    corner = per_token[:, 0, :, 0, -1, -1]  # [tokens, 3]
    colour = corner * std.view(1, 3) + mean.view(1, 3)
    return (colour.numpy() * 255).reshape(rows, cols, 3)


@pytest.mark.parametrize(
    "size", [(230, 150), (120, 260), (200, 200)], ids=["wide", "tall", "square"]
)
def test_cells_cover_the_pixels_they_claim(vlm: VLM, size: tuple[int, int]) -> None:
    config = LaserConfig()
    probe = Image.new("RGB", size)
    geometry = vlm.adapter.geometry(probe, vlm.adapter.encode(["x"], [probe], config))
    image, colours = _paint_cells(size, geometry.cell_boxes, seed=sum(size))
    inputs = vlm.adapter.encode(["x"], [image], config)
    seen = _token_centre_colours(vlm, inputs, geometry.grid)
    boxes = geometry.cell_boxes
    widths, heights = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    whole = (widths > 0.99 * widths.max()) & (heights > 0.99 * heights.max())
    padding = (widths == 0) | (heights == 0)
    assert whole.sum() >= 0.3 * whole.size
    error = np.abs(seen - colours)[whole].max()
    assert error < 12, f"a token shows a colour from another cell (max error {error:.0f}/255)"
    if padding.any():  # LLaVA: cells that only cover padding show the mean colour
        mean = np.array(vlm.adapter.mean_color)
        assert np.abs(seen[padding] - mean).max() < 12


def test_llava_pads_instead_of_cropping(tiny_vlms: dict[str, VLM]) -> None:
    vlm = tiny_vlms["llava"]
    image = Image.new("RGB", (300, 100), (255, 0, 0))
    geometry = vlm.adapter.geometry(image, vlm.adapter.encode(["x"], [image], LaserConfig()))
    boxes = geometry.cell_boxes
    # The whole width is covered (no centre crop), and the top and bottom rows are padding.
    assert boxes[..., 0].min() == 0 and boxes[..., 2].max() == 300
    assert boxes[0, 0, 3] - boxes[0, 0, 1] == 0 and boxes[-1, 0, 3] - boxes[-1, 0, 1] == 0


def test_qwen_pixel_budget_caps_huge_images(tiny_vlms: dict[str, VLM]) -> None:
    vlm = tiny_vlms["qwen2_vl"]
    image = Image.new("RGB", (6000, 4000), (10, 200, 30))
    config = LaserConfig(max_visual_tokens=64)
    inputs = vlm.adapter.encode(["x"], [image], config)
    geometry = vlm.adapter.geometry(image, inputs)
    rows, cols = geometry.grid
    assert rows * cols <= 64
    assert abs(cols / rows - 1.5) < 0.35  # aspect kept
    assert geometry.cell_boxes[-1, -1, 2] == 6000 and geometry.cell_boxes[-1, -1, 3] == 4000
