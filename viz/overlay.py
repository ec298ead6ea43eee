"""Paint a visual-token attention map over the original image, with the right geometry.

Each visual token is a cell of an axis-aligned grid whose footprint in the ORIGINAL image is
given by `cell_boxes` (LLaVA pads to a square, so border cells may be clipped or lie fully
outside; Qwen cells need not be square). A display pixel takes the value of the cell that holds
its centre; pixels in no cell keep the image untouched.

The geometry depends only on the image and the grid, so `OverlayCanvas` computes it once (one
`np.searchsorted` per axis). Each `render` is then two gathers of uint8 colour levels (or a
separable interpolation, when smoothed) and two cv2 passes, the colormap lookup and the alpha
blend: fast enough to redraw three panels while a user drags the layer slider.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from matplotlib import colormaps
from PIL import Image

from viz.draw import fit_for_display

_LEVELS = 256  # colormap resolution (one uint8 level per colour)


@lru_cache(maxsize=16)
def colormap_lut(cmap: str = "magma") -> np.ndarray:
    """The named matplotlib colormap as a read-only uint8 lookup table [256, 3]."""
    lut = np.rint(colormaps[cmap](np.linspace(0.0, 1.0, _LEVELS))[:, :3] * 255).astype(np.uint8)
    lut.flags.writeable = False
    return lut


@lru_cache(maxsize=16)
def _colormap_lut_cv(cmap: str) -> np.ndarray:
    """`colormap_lut(cmap)` in the [256, 1, 3] layout `cv2.applyColorMap` takes (RGB kept)."""
    return np.ascontiguousarray(colormap_lut(cmap)[:, None, :])


@dataclass(frozen=True)
class _Axis:
    """Display-pixel lookup along one axis of the grid (x for columns, y for rows).

    Attributes:
        span: Display pixels covered by at least one cell (a bounding range).
        index: [len(span)] grid index under each of those pixels (0 where no cell).
        covered: [len(span)] bool, whether the pixel lies in a cell (False only in gaps).
        lerp_lo: [len(span)] lower grid index for bilinear smoothing.
        lerp_hi: [len(span)] upper grid index for bilinear smoothing.
        lerp_w: [len(span)] float32 weight of `lerp_hi`.
    """

    span: slice
    index: np.ndarray
    covered: np.ndarray
    lerp_lo: np.ndarray
    lerp_hi: np.ndarray
    lerp_w: np.ndarray


def _empty_axis() -> _Axis:
    """An axis where no display pixel lies in any cell."""
    empty = np.zeros(0, dtype=np.intp)
    return _Axis(
        slice(0, 0), empty, np.zeros(0, dtype=bool), empty, empty, np.zeros(0, dtype=np.float32)
    )


def _axis_lookup(starts: np.ndarray, ends: np.ndarray, src_len: int, dst_len: int) -> _Axis:
    """Per display pixel, the grid index whose [start, end) holds the pixel centre.

    Args:
        starts: [n] start of each grid line in source pixels (NaN for an empty line).
        ends: [n] end of each grid line in source pixels.
        src_len: Source image length along this axis.
        dst_len: Display image length along this axis.
    """
    lines = np.flatnonzero(ends > starts)  # non-empty lines, in increasing position
    if lines.size == 0:
        return _empty_axis()
    centres = (np.arange(dst_len) + 0.5) * (src_len / dst_len)  # display pixel -> source pixel
    slot = np.searchsorted(starts[lines], centres, side="right") - 1
    slot_safe = slot.clip(0)
    inside = (slot >= 0) & (centres < ends[lines][slot_safe])
    covered = np.flatnonzero(inside)
    if covered.size == 0:  # every cell falls between display pixel centres
        return _empty_axis()
    span = slice(int(covered[0]), int(covered[-1]) + 1)
    # Smoothing interpolates between cell centres (clamped at the outer cells).
    cell_centres = (starts[lines] + ends[lines]) / 2
    position = np.interp(centres[span], cell_centres, np.arange(lines.size, dtype=np.float64))
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, lines.size - 1)
    return _Axis(
        span=span,
        index=np.where(inside, lines[slot_safe], 0)[span],
        covered=inside[span],
        lerp_lo=lines[lower],
        lerp_hi=lines[upper],
        lerp_w=(position - lower).astype(np.float32),
    )


class OverlayCanvas:
    """One image and one cell grid, ready to paint any number of maps quickly.

    Example:
        canvas = OverlayCanvas(image, cell_boxes, max_side=1024)
        frames = [canvas.render(m, vmin=0.0) for m in (raw, relative, contrastive)]

    Attributes:
        base: uint8 [h, w, 3] the image downscaled for display (read-only).
        source_size: (width, height) of the original image; boxes refer to these pixels.
        display_size: (width, height) of every rendered frame.
        grid_shape: (rows, cols) of the visual-token grid.
        visible: bool [rows, cols], cells with a non-empty footprint in the image.
    """

    def __init__(
        self,
        image: Image.Image | np.ndarray,
        cell_boxes: np.ndarray,
        *,
        max_side: int = 1024,
    ) -> None:
        """Downscale the image and precompute which cell each display pixel shows.

        Args:
            image: PIL RGB image or uint8 array [H, W, 3]; the original, any size.
            cell_boxes: [rows, cols, 4] each cell's footprint (x0, y0, x1, y1) in original
                pixels; cells outside the image have zero area.
            max_side: Longest side of the display frames in pixels.
        """
        boxes = np.asarray(cell_boxes, dtype=np.float64)
        if boxes.ndim != 3 or boxes.shape[2] != 4:
            raise ValueError(f"cell_boxes must be [rows, cols, 4], got shape {boxes.shape}")
        self.source_size: tuple[int, int] = (
            image.size if isinstance(image, Image.Image) else (image.shape[1], image.shape[0])
        )
        self.base = fit_for_display(image, max_side)
        self.base.flags.writeable = False
        self.display_size: tuple[int, int] = (self.base.shape[1], self.base.shape[0])
        self.grid_shape: tuple[int, int] = (boxes.shape[0], boxes.shape[1])
        x0, y0, x1, y1 = np.moveaxis(boxes, 2, 0)  # each [rows, cols]
        self.visible = (x1 > x0) & (y1 > y0)
        self._cols = _axis_lookup(
            *_line_extents(x0, x1, self.visible, axis=0), self.source_size[0], self.display_size[0]
        )
        self._rows = _axis_lookup(
            *_line_extents(y0, y1, self.visible, axis=1), self.source_size[1], self.display_size[1]
        )
        # Pixels of the bounding span that lie in a cell (a mask only for grids with gaps).
        inside = self._rows.covered[:, None] & self._cols.covered[None, :]
        self._inside: np.ndarray | bool = True if inside.all() else inside[:, :, None]
        # Every display pixel lies in a cell (the usual case): the blend is the whole frame.
        self._covers_all = bool(inside.all()) and inside.shape == self.base.shape[:2]

    def value_range(
        self, heat: np.ndarray, *, vmin: float | None = None, vmax: float | None = None
    ) -> tuple[float, float]:
        """The colour range used for `heat`: given limits, else min/max over visible cells.

        Cells outside the image (e.g. LLaVA's padding) are not shown, so they do not stretch
        the range.

        Args:
            heat: [rows, cols] map on the visual-token grid.
            vmin: Fixed lower limit, or None for the data minimum.
            vmax: Fixed upper limit, or None for the data maximum.

        Returns:
            (lo, hi) with lo <= hi.
        """
        values = np.nan_to_num(self._checked(heat)[self.visible])
        data_lo, data_hi = (values.min(), values.max()) if values.size else (0.0, 0.0)
        lo = float(data_lo if vmin is None else vmin)
        hi = float(data_hi if vmax is None else vmax)
        if vmin is None:  # a given vmax below the data stays the top of the range
            lo = min(lo, hi)
        if vmax is None:
            hi = max(lo, hi)
        if hi < lo:
            raise ValueError(f"vmax ({hi}) must be >= vmin ({lo})")
        return lo, hi

    def render(
        self,
        heat: np.ndarray,
        *,
        opacity: float = 0.55,
        cmap: str = "magma",
        vmin: float | None = None,
        vmax: float | None = None,
        smooth: bool = False,
    ) -> np.ndarray:
        """Paint one map over the display image.

        Args:
            heat: [rows, cols] values >= 0 on the visual-token grid (all zeros is fine).
            opacity: Weight of the colour in [0, 1]; 0 shows the image only.
            cmap: Matplotlib colormap name; keep it perceptually uniform.
            vmin: Value shown as the lowest colour (default: minimum over visible cells).
            vmax: Value shown as the highest colour (default: maximum over visible cells).
            smooth: Interpolate bilinearly between cell centres instead of flat cells.

        Returns:
            New uint8 RGB array [h, w, 3] of `display_size`.
        """
        heat = np.nan_to_num(self._checked(heat))
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {opacity}")
        units = _level_units(heat, *self.value_range(heat, vmin=vmin, vmax=vmax))
        rows, cols = self._rows, self._cols
        if rows.index.size == 0 or cols.index.size == 0:  # no display pixel lies in a cell
            return self.base.copy()
        if smooth:
            levels = self._smooth_levels(units)  # uint8 [h', w']
        else:
            cells = units.astype(np.uint8)  # [rows, cols]
            levels = np.take(np.take(cells, rows.index, axis=0), cols.index, axis=1)  # [h', w']
        colour = cv2.applyColorMap(levels, _colormap_lut_cv(cmap))  # [h', w', 3]
        region = self.base[rows.span, cols.span]
        # region * (1 - opacity) + colour * opacity, rounded to the nearest level.
        blend = cv2.addWeighted(region, 1.0 - opacity, colour, opacity, 0.0)
        if self._covers_all:
            return blend
        out = self.base.copy()
        np.copyto(out[rows.span, cols.span], blend, where=self._inside)
        return out

    def _checked(self, heat: np.ndarray) -> np.ndarray:
        """`heat` as float32 [rows, cols], or a ValueError naming the expected shape."""
        heat = np.asarray(heat, dtype=np.float32)
        if heat.shape != self.grid_shape:
            raise ValueError(f"heat must have shape {self.grid_shape}, got {heat.shape}")
        return heat

    def _smooth_levels(self, units: np.ndarray) -> np.ndarray:
        """Separable bilinear interpolation of grid level units at the display pixels.

        Interpolation is linear, so scaling to colour levels on the small grid first gives the
        same result as scaling every display pixel afterwards, for a fraction of the work.

        Args:
            units: float32 [rows, cols] from `_level_units`.

        Returns:
            uint8 [h', w'] colormap levels over the bounding span.
        """
        cols, rows = self._cols, self._rows
        left = units[:, cols.lerp_lo]  # [rows, w']
        along_x = left + (units[:, cols.lerp_hi] - left) * cols.lerp_w
        top = along_x[rows.lerp_lo]  # [h', w']
        bottom = along_x[rows.lerp_hi]
        bottom -= top
        bottom *= rows.lerp_w[:, None]
        bottom += top
        return bottom.astype(np.uint8)


def _line_extents(
    lo: np.ndarray, hi: np.ndarray, visible: np.ndarray, *, axis: int
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end of each grid line, from the visible cells of that line (NaN if none)."""
    with np.errstate(invalid="ignore"):
        starts = np.where(visible, lo, np.inf).min(axis=axis)
        ends = np.where(visible, hi, -np.inf).max(axis=axis)
    empty = ~visible.any(axis=axis)
    starts[empty] = np.nan
    ends[empty] = np.nan
    return starts, ends


def _level_units(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Values as float32 colormap levels + 0.5 in [0.5, 255.5]: truncation to uint8 rounds.

    A flat range (hi == lo) maps everything to the lowest level.
    """
    if hi <= lo:
        return np.full(values.shape, 0.5, dtype=np.float32)
    scaled = (values.astype(np.float32) - np.float32(lo)) * np.float32((_LEVELS - 1) / (hi - lo))
    return np.clip(scaled + 0.5, 0.5, _LEVELS - 0.5)


def overlay_heatmap(
    image: Image.Image | np.ndarray,
    heat: np.ndarray,
    cell_boxes: np.ndarray,
    *,
    opacity: float = 0.55,
    cmap: str = "magma",
    vmin: float | None = None,
    vmax: float | None = None,
    max_side: int = 1024,
    smooth: bool = False,
) -> np.ndarray:
    """Paint one grid map over the original image (one-off; reuse `OverlayCanvas` for many).

    Args:
        image: PIL RGB image or uint8 array [H, W, 3]; the original, any size.
        heat: [rows, cols] map on the visual-token grid, values >= 0.
        cell_boxes: [rows, cols, 4] each cell's footprint (x0, y0, x1, y1) in original pixels.
        opacity: Weight of the colour in [0, 1].
        cmap: Matplotlib colormap name.
        vmin: Value of the lowest colour (default: minimum over visible cells).
        vmax: Value of the highest colour (default: maximum over visible cells).
        max_side: Longest side of the result in pixels (aspect kept, never upscaled).
        smooth: Interpolate between cell centres instead of flat cells.

    Returns:
        uint8 RGB array [h, w, 3].
    """
    canvas = OverlayCanvas(image, cell_boxes, max_side=max_side)
    return canvas.render(heat, opacity=opacity, cmap=cmap, vmin=vmin, vmax=vmax, smooth=smooth)
