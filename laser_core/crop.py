"""Constrained visual cropping (Con-ViCrop, LASER Sec. 4.2).

The crop has a fixed size, `max(ratio * W, minimum) x max(ratio * H, minimum)` capped at the image,
and is placed where it holds the most attention mass. Each grid cell's mass is spread uniformly
over its footprint in the ORIGINAL image (cells of LLaVA's square padding have no footprint and
drop out). Among equally good windows, the one nearest the map's centre of mass wins.

Because the grid is axis-aligned, the mass of a window is separable:
`mass(x0, y0) = w_y(y0)^T D w_x(x0)`, where D is the mass density of each cell and w_x, w_y are the
overlaps of the window with each column and row. One matrix product scores every integer position.
"""

from __future__ import annotations

import numpy as np

Box = tuple[int, int, int, int]
_TIE_RTOL = 1e-6


def crop_size(
    width: int, height: int, *, ratio: float = 0.5, minimum: int = 224
) -> tuple[int, int]:
    """Crop side lengths: `max(ratio * side, minimum)`, capped at the image side."""
    crop_w = min(width, max(int(round(ratio * width)), minimum))
    crop_h = min(height, max(int(round(ratio * height)), minimum))
    return crop_w, crop_h


def crop_box(
    heat: np.ndarray,
    cell_boxes: np.ndarray,
    image_size: tuple[int, int],
    *,
    ratio: float = 0.5,
    minimum: int = 224,
) -> Box:
    """The window of the crop size that holds the most map mass.

    Args:
        heat: [rows, cols] map, >= 0.
        cell_boxes: [rows, cols, 4] cell footprints (x0, y0, x1, y1) in original pixels.
        image_size: (W, H) of the original image.
        ratio, minimum: The size rule (config `crop_ratio`, `crop_min`).

    Returns:
        (x0, y0, x1, y1), integers, inside the image.
    """
    width, height = image_size
    crop_w, crop_h = crop_size(width, height, ratio=ratio, minimum=minimum)
    col_edges, row_edges = _edges(cell_boxes)
    density = _density(np.asarray(heat, dtype=np.float64), col_edges, row_edges)  # [rows, cols]
    x_starts = np.arange(width - crop_w + 1)
    y_starts = np.arange(height - crop_h + 1)
    w_x = _overlaps(x_starts, crop_w, col_edges)  # [n_x, cols]
    w_y = _overlaps(y_starts, crop_h, row_edges)  # [n_y, rows]
    mass = w_y @ density @ w_x.T  # [n_y, n_x]
    best = mass.max()
    ties = np.argwhere(mass >= best - _TIE_RTOL * max(abs(best), 1e-12))  # [n, 2]: (y, x)
    centre = _centre_of_mass(density, col_edges, row_edges, image_size)
    window_centres = np.stack([ties[:, 1] + crop_w / 2, ties[:, 0] + crop_h / 2], axis=1)
    nearest = int(np.argmin(((window_centres - centre) ** 2).sum(axis=1)))
    y0, x0 = (int(v) for v in ties[nearest])
    return x0, y0, x0 + crop_w, y0 + crop_h


def box_mass_share(heat: np.ndarray, cell_boxes: np.ndarray, box: tuple[float, ...]) -> float:
    """Share of the map's mass inside `box` (x0, y0, x1, y1), cells spread over their footprints.

    This is the paper's "attention aggregation" (Table 2). Returns 0.0 for an all-zero map.
    """
    col_edges, row_edges = _edges(cell_boxes)
    density = _density(np.asarray(heat, dtype=np.float64), col_edges, row_edges)
    total = float((density * _extent(row_edges)[:, None] * _extent(col_edges)[None, :]).sum())
    if total <= 0:
        return 0.0
    x0, y0, x1, y1 = box
    w_x = _overlaps(np.array([x0]), x1 - x0, col_edges)[0]
    w_y = _overlaps(np.array([y0]), y1 - y0, row_edges)[0]
    return float(w_y @ density @ w_x) / total


def _edges(cell_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[cols, 2] x-extents of the columns and [rows, 2] y-extents of the rows of the grid."""
    boxes = np.asarray(cell_boxes, dtype=np.float64)
    return boxes[0][:, (0, 2)], boxes[:, 0][:, (1, 3)]


def _extent(edges: np.ndarray) -> np.ndarray:
    return np.clip(edges[:, 1] - edges[:, 0], 0.0, None)


def _density(heat: np.ndarray, col_edges: np.ndarray, row_edges: np.ndarray) -> np.ndarray:
    area = _extent(row_edges)[:, None] * _extent(col_edges)[None, :]  # [rows, cols]
    return np.divide(heat, area, out=np.zeros_like(heat), where=area > 0)


def _overlaps(starts: np.ndarray, size: float, edges: np.ndarray) -> np.ndarray:
    """Overlap length of each window [s, s + size) with each interval [e0, e1). [n, cells]."""
    lo = np.maximum(starts[:, None], edges[None, :, 0])
    hi = np.minimum(starts[:, None] + size, edges[None, :, 1])
    return np.clip(hi - lo, 0.0, None)


def _centre_of_mass(
    density: np.ndarray, col_edges: np.ndarray, row_edges: np.ndarray, image_size: tuple[int, int]
) -> np.ndarray:
    mass = density * _extent(row_edges)[:, None] * _extent(col_edges)[None, :]
    total = mass.sum()
    if total <= 0:
        return np.array([image_size[0] / 2, image_size[1] / 2])
    col_mid = col_edges.mean(axis=1)
    row_mid = row_edges.mean(axis=1)
    return np.array([(mass.sum(0) * col_mid).sum() / total, (mass.sum(1) * row_mid).sum() / total])
