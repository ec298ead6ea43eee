"""ViCrop (Zhang et al., 2025, "MLLMs know where to look"), as its authors' code runs it.

    map     relative attention at the model's static layer, from the last prompt position:
            heads averaged first, then mean_h a[q] / (mean_h a[generic] + eps)
    box     the adaptive multi-scale window: for each ratio r in 1, 1.2, ..., 2, a window of
            b * r pixels (b = the model's native input side) in whole grid cells slides over the
            map; the ratio whose best window stands out most from its neighbours wins (below)
    answer  greedy decoding from the ORIGINAL image and the crop together: two images in one
            user turn, then the question once

The box rule, per ratio r: the window is `min(int(b r / cell), cells)` cells along each axis; if it
already covers the whole grid (both axes), r = 1 means the whole image and a larger r is skipped.
The window's map sums are scanned x outer, y inner, and the first largest sum wins; its sharpness
is (that sum - the mean sum of its up to four neighbouring positions) / cells in the window. The
sharpest ratio wins (the smallest on ties); a `b r` square is centred on its window, shifted inside
the image and clipped. Cells are placed in the image through the model's true geometry (LLaVA's
square padding, Qwen's resize); cells that cover only padding carry no mass. Where the authors'
code is silent we decided: a window is at least one cell (a huge image could make `b r` smaller
than a cell), and the box is integer pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from torch import Tensor

from laser_core.adapters import ImageGeometry
from laser_core.crop import Box
from laser_core.decode import decode
from laser_core.maps import relative_attention
from laser_core.passes import Passes
from laser_core.result import MethodResult
from laser_core.stages import timed

RATIOS = (1.0, 1.2, 1.4, 1.6, 1.8, 2.0)


@dataclass(frozen=True)
class VicropBox:
    """Where ViCrop crops, and why there."""

    box: Box  # (x0, y0, x1, y1) integer pixels, inside the image
    ratio: float  # the chosen r: the crop side is about b * r pixels
    sharpness: float  # how much the best window stands out at that ratio (0: the whole image)
    window: tuple[int, int]  # (cols, rows) grid cells of the winning window


def vicrop_map(
    a_query: Tensor, a_generic: Tensor, grid: tuple[int, int], *, eps: float = 1e-6
) -> np.ndarray:
    """ViCrop's map of one layer: heads averaged, then the ratio to the generic prompt.

    Args:
        a_query: [head, patch] attention of the last prompt position, with the question.
        a_generic: Same shape, with the generic question.
        grid: (rows, cols) of the visual tokens.
        eps: Guard against 0 / 0 (the authors divide with none).

    Returns:
        [rows, cols] float32.
    """
    heat = relative_attention(a_query.mean(0), a_generic.mean(0), eps)  # [patch]
    return heat.reshape(grid).numpy()


def vicrop_box(
    heat: np.ndarray, geometry: ImageGeometry, *, base: int, ratios: tuple[float, ...] = RATIOS
) -> VicropBox:
    """ViCrop's adaptive multi-scale box on a map (see the module docstring).

    Args:
        heat: [rows, cols] map (any real values; cells over padding only are ignored).
        geometry: Where the grid lies in the image (`cell_boxes`, `covered`).
        base: b, the model's native input side in pixels (>= 1).
        ratios: The window scales tried, in order (ties go to the earlier one).

    Returns:
        The box, the chosen ratio, its sharpness and the window size in cells.
    """
    rows, cols = geometry.grid
    width, height = geometry.image_size
    mass = np.where(geometry.on_image, np.asarray(heat, dtype=np.float64), 0.0)  # [rows, cols]
    cell_w, cell_h = geometry.cell_size
    best: tuple[float, float, tuple[int, int], tuple[int, int]] | None = None
    for ratio in ratios:
        n_x = max(1, min(int(base * ratio / cell_w), cols))
        n_y = max(1, min(int(base * ratio / cell_h), rows))
        if n_x >= cols and n_y >= rows:
            if ratio == ratios[0]:
                return VicropBox((0, 0, width, height), ratio, 0.0, (cols, rows))
            continue
        sums = sliding_window_view(mass, (n_y, n_x)).sum(axis=(2, 3))  # [y, x] window sums
        x, y = _first_max(sums)
        sharpness = (sums[y, x] - np.mean(_neighbours(sums, x, y))) / (n_x * n_y)
        if best is None or sharpness > best[1]:
            best = (ratio, float(sharpness), (x, y), (n_x, n_y))
    assert best is not None  # the first ratio either returned or was scored
    ratio, sharpness, (x, y), (n_x, n_y) = best
    x0, y0 = geometry.covered[:2]
    centre_x = int(x0 + x * cell_w + cell_w * n_x / 2)
    centre_y = int(y0 + y * cell_h + cell_h * n_y / 2)
    half = int(base * ratio // 2)
    left, right = _span(centre_x, half, width)
    top, bottom = _span(centre_y, half, height)
    return VicropBox((left, top, right, bottom), ratio, sharpness, (n_x, n_y))


def _first_max(sums: np.ndarray) -> tuple[int, int]:
    """(x, y) of the largest window sum, the first in the authors' scan (x outer, y inner)."""
    flat = int(np.argmax(sums.T))  # sums.T is [x, y]: row-major order = x outer, y inner
    x, y = divmod(flat, sums.shape[0])
    return x, y


def _neighbours(sums: np.ndarray, x: int, y: int) -> list[float]:
    """The window sums left, right, above and below (x, y), where they exist."""
    n_y, n_x = sums.shape
    steps = ((-1, 0), (1, 0), (0, -1), (0, 1))
    return [
        float(sums[y + dy, x + dx]) for dx, dy in steps if 0 <= x + dx < n_x and 0 <= y + dy < n_y
    ]


def _span(centre: int, half: int, side: int) -> tuple[int, int]:
    """[centre - half, centre + half], moved to lie inside [0, side] and clipped there."""
    centre = min(max(centre, half), side - half)
    return max(0, centre - half), min(side, centre + half)


def run_vicrop(passes: Passes) -> MethodResult:
    """Answer with ViCrop: relative attention at the static layer places an adaptive crop; the
    answer reads the original image and the crop together.

    The result's `input_image` is the crop; `extras["vicrop"]` holds the ratio, the sharpness and
    the window, `extras["geometries"]` the geometry of both images of the answer's turn.
    """
    timings: dict[str, float] = {}
    vlm, image, config = passes.vlm, passes.image, passes.config
    static = int(config.static_layer or 0)
    with timed(timings, "capture"):
        a_query, a_generic = passes.capture("query"), passes.capture("generic")
        grid, eps = passes.geometry.grid, config.relative_eps
        heat = vicrop_map(a_query[static], a_generic[static], grid, eps=eps)
    with timed(timings, "crop"):
        placed = vicrop_box(heat, passes.geometry, base=vlm.adapter.vicrop_base_side)
        crop = passes.crop(placed.box)
    with timed(timings, "decode"):
        inputs, geometries = passes.encode([passes.prompts.query], [[image, crop]])
        decoded = decode(vlm, inputs, config)
    extras = {
        "vicrop": {"ratio": placed.ratio, "sharpness": placed.sharpness, "window": placed.window},
        "geometries": geometries,
    }
    return MethodResult(
        "vicrop",
        decoded.answer,
        static,
        heat,
        placed.box,
        crop,
        decoded.steps,
        timings,
        config.to_dict(),
        extras=extras,
    )
