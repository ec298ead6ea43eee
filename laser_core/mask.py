"""The counterfactual image (LASER Sec. 4.3, Eq. 7).

The `k_patches` grid cells with the largest contrastive attention hold the evidence the question
points at. Filling their footprints (with the processor's mean colour by default) removes that
evidence; decoding the masked crop next to the real crop tells, token by token, which candidate
answers depend on it (VAT).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image

from laser_core.config import MaskFill


def patch_count(k_patches: int | float, n_patches: int) -> int:
    """Number of masked cells: an int is a count, a float in (0, 1) a fraction; at least 1."""
    if isinstance(k_patches, float):
        count = int(round(k_patches * n_patches))
    else:
        count = int(k_patches)
    return max(1, min(count, n_patches))


def top_cells(
    heat: np.ndarray, k_patches: int | float, *, on_image: np.ndarray | None = None
) -> np.ndarray:
    """The cells with the largest map value (ties: earlier in row-major order).

    Only cells with a positive value are taken: a cell the question added no attention to holds
    no evidence, and masking it (an image corner, say) would only add noise to VAT. A map with
    fewer than k positive cells masks fewer; an all-zero map masks none (then I- = I+, VAT = 0).
    Cells outside `on_image` (LLaVA's square padding) are never taken: they have no pixels to
    fill, and counting them among the k would leave the evidence they outrank unmasked.

    Args:
        heat: [rows, cols] map.
        k_patches: Count or fraction of all cells (see `patch_count`).
        on_image: [rows, cols] bool, the cells that cover image pixels; None = every cell.

    Returns:
        [n, 2] int array of (row, col), largest first, n <= k.
    """
    heat = np.asarray(heat, dtype=np.float64)
    if on_image is not None:
        heat = np.where(on_image, heat, 0.0)
    flat = heat.ravel()
    k = patch_count(k_patches, flat.size)
    order = np.argsort(-flat, kind="stable")[:k]
    order = order[flat[order] > 0]
    return np.stack(np.unravel_index(order, heat.shape), axis=1).astype(np.int64)


def mask_cells(
    image: Image.Image,
    cell_boxes: np.ndarray,
    cells: np.ndarray,
    *,
    fill: MaskFill = "mean",
    mean_color: tuple[int, int, int] = (122, 116, 104),
) -> Image.Image:
    """A copy of `image` with the footprints of `cells` filled.

    Args:
        image: Original RGB image.
        cell_boxes: [rows, cols, 4] footprints in original pixels.
        cells: [k, 2] (row, col) cells to fill.
        fill: "mean" (the processor's mean colour), "black", or "blur" (a strong Gaussian blur,
            standard deviation one cell width, so no detail of the cell survives).
        mean_color: RGB used by "mean".

    Returns:
        A new RGB image of the same size.
    """
    out = image.convert("RGB").copy()
    blurred = None
    if fill == "blur":
        blurred = Image.fromarray(_blur(np.asarray(out), _blur_sigma(cell_boxes)))
    for row, col in cells:
        x0, y0, x1, y1 = (int(round(v)) for v in cell_boxes[row, col])
        if x1 <= x0 or y1 <= y0:
            continue  # a padding cell: no footprint in the original image
        if blurred is not None:
            out.paste(blurred.crop((x0, y0, x1, y1)), (x0, y0))
        else:
            out.paste(mean_color if fill == "mean" else (0, 0, 0), (x0, y0, x1, y1))
    return out


def _blur_sigma(cell_boxes: np.ndarray) -> float:
    """Standard deviation in pixels of the "blur" fill: the widest cell, at least 2 pixels."""
    return max(2.0, float(np.max(cell_boxes[..., 2] - cell_boxes[..., 0])))


def _blur(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-like blur of uint8 [H, W, 3] with standard deviation `sigma` pixels.

    `cv2.stackBlur` convolves with a triangular kernel of half-width r, whose standard
    deviation is sqrt(r (r + 2) / 6); r = sqrt(6 sigma^2 + 1) - 1 matches `sigma`, the meaning
    `radius` had in PIL's `GaussianBlur`, used before. Its cost per pixel does not grow with r:
    at sigma ~ 40-170 px it is 2-3x faster than PIL and 40-100x faster than `cv2.GaussianBlur`.
    """
    half_width = max(1, round(math.sqrt(6 * sigma**2 + 1) - 1))
    return cv2.stackBlur(pixels, (2 * half_width + 1, 2 * half_width + 1))
