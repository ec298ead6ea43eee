"""PREVIOUS implementations, replaced by cv2 ones; kept only for `bench_overlay.py`'s comparison.

Copied unchanged in substance from commit 60c8cd3 (`viz/overlay.py` render, `viz/draw.py`
draw_box / draw_cells, `laser_core/mask.py` blur fill, and `viz/panels.py` heatmap_panel to call
the previous draw_box), so one benchmark run times the old and the new code on the same inputs.
Nothing in the product imports this module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from viz import OverlayCanvas, add_colorbar, colormap_lut
from viz.draw import CROP_COLOR, INK, MASK_COLOR, _line_width, scale_box, to_rgb_array
from viz.overlay import _LEVELS, _level_units

_ALPHA_ONE = 256  # fixed-point 1.0 for integer alpha blending


class PreviousCanvas(OverlayCanvas):
    """`OverlayCanvas` with the previous numpy `render`: packed uint32 RGBx pixels, integer alpha.

    The geometry (and the smooth interpolation) is the current one, which did not change.
    """

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
        heat = np.nan_to_num(self._checked(heat))
        if not 0.0 <= opacity <= 1.0:
            raise ValueError(f"opacity must be in [0, 1], got {opacity}")
        lo, hi = self.value_range(heat, vmin=vmin, vmax=vmax)
        alpha = round(opacity * _ALPHA_ONE)
        # Blend out = base * (1 - a) + colour * a with both terms floored to uint8, so their sum
        # stays <= 255 and RGB pixels packed as uint32 can be added without carries.
        lut = np.zeros((_LEVELS, 4), dtype=np.uint8)
        lut[:, :3] = (colormap_lut(cmap).astype(np.uint16) * alpha) >> 8
        packed_lut = lut.view(np.uint32).ravel()  # [256], one RGBx pixel each
        rows, cols = self._rows, self._cols
        if smooth:
            packed = packed_lut[self._smooth_levels(_level_units(heat, lo, hi))]  # [h', w']
        else:
            cells = packed_lut[_level_units(heat, lo, hi).astype(np.uint8)]  # [rows, cols]
            packed = np.take(np.take(cells, rows.index, axis=0), cols.index, axis=1)  # [h', w']
        return self.blend_packed(packed, alpha)

    def blend_packed(self, packed: np.ndarray, alpha: int) -> np.ndarray:
        """Add the base term to packed colour terms [h', w'] and write them into a base copy."""
        packed = packed + self._packed_base_term(alpha)
        rgbx = packed.view(np.uint8).reshape(*packed.shape, 4)  # [h', w', 4]
        out = self.base.copy()
        region = out[self._rows.span, self._cols.span]
        inside = self._inside if self._inside is True else self._inside[:, :, 0]
        for channel in range(3):  # one plane at a time: much faster than a 3-byte strided copy
            np.copyto(region[:, :, channel], rgbx[:, :, channel], where=inside)
        return out

    def colour_and_blend(self, levels: np.ndarray, opacity: float, cmap: str = "magma"):
        """The colour + blend tail of `render` alone, on uint8 levels [h', w']."""
        alpha = round(opacity * _ALPHA_ONE)
        lut = np.zeros((_LEVELS, 4), dtype=np.uint8)
        lut[:, :3] = (colormap_lut(cmap).astype(np.uint16) * alpha) >> 8
        return self.blend_packed(lut.view(np.uint32).ravel()[levels], alpha)

    def _packed_base_term(self, alpha: int) -> np.ndarray:
        """floor(region * (1 - a)) packed as uint32 RGBx [h', w'], cached for the last alpha."""
        cached = getattr(self, "_base_term", None)
        if cached is None or cached[0] != alpha:
            region = self.base[self._rows.span, self._cols.span].astype(np.uint16)
            term = np.zeros((*region.shape[:2], 4), dtype=np.uint8)
            term[:, :, :3] = (region * (_ALPHA_ONE - alpha)) >> 8
            cached = (alpha, term.view(np.uint32)[:, :, 0])
            self._base_term = cached
        return cached[1]


def mask_cells_blur(image: Image.Image, cell_boxes: np.ndarray, cells: np.ndarray) -> Image.Image:
    """`mask_cells(..., fill="blur")` with PIL's GaussianBlur (radius = standard deviation)."""
    out = image.convert("RGB").copy()
    cell_w = float(np.max(cell_boxes[..., 2] - cell_boxes[..., 0]))
    blurred = image.convert("RGB").filter(ImageFilter.GaussianBlur(radius=max(2.0, cell_w)))
    for row, col in cells:
        x0, y0, x1, y1 = (int(round(v)) for v in cell_boxes[row, col])
        if x1 <= x0 or y1 <= y0:
            continue  # a padding cell: no footprint in the original image
        out.paste(blurred.crop((x0, y0, x1, y1)), (x0, y0))
    return out


def draw_box(
    image: Image.Image | np.ndarray,
    box: Sequence[float],
    *,
    color: str = CROP_COLOR,
    width: int | None = None,
    source_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The previous `viz.draw_box`: PIL `ImageDraw` on a PIL copy of the array."""
    canvas = Image.fromarray(to_rgb_array(image))
    width = width if width is not None else _line_width(canvas.size, thick=True)
    x0, y0, x1, y1 = scale_box(box, source_size or canvas.size, canvas.size)
    if x1 <= x0 or y1 <= y0:
        return np.asarray(canvas).copy()
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((x0 - 1, y0 - 1, x1, y1), outline=INK, width=width + 2)
    draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=color, width=width)
    return np.asarray(canvas).copy()


def draw_cells(
    image: Image.Image | np.ndarray,
    cell_boxes: np.ndarray,
    cells: np.ndarray | Sequence[Sequence[int]],
    *,
    color: str = MASK_COLOR,
    alpha: float = 0.45,
    width: int | None = None,
    source_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """The previous `viz.draw_cells`: float32 tint, whole-image hatch mask, PIL outlines."""
    out = to_rgb_array(image).copy()
    target = (out.shape[1], out.shape[0])
    width = width if width is not None else _line_width(target, thick=False)
    rgb = np.array(Image.new("RGB", (1, 1), color).getpixel((0, 0)), dtype=np.float32)
    yy, xx = np.indices(out.shape[:2], sparse=True)
    hatch = (xx + yy) % max(4 * width, 4) < width  # [h, w] diagonal lines
    spans = []
    for row, col in np.asarray(cells, dtype=int).reshape(-1, 2):
        x0, y0, x1, y1 = scale_box(cell_boxes[row, col], source_size or target, target)
        if x1 > x0 and y1 > y0:
            patch = out[y0:y1, x0:x1].astype(np.float32)
            patch = np.rint(patch * (1 - alpha) + rgb * alpha).astype(np.uint8)
            patch[hatch[y0:y1, x0:x1]] = rgb.astype(np.uint8)
            out[y0:y1, x0:x1] = patch
            spans.append((x0, y0, x1, y1))
    if width > 0 and spans:
        canvas = Image.fromarray(out)
        draw = ImageDraw.Draw(canvas)
        for x0, y0, x1, y1 in spans:
            draw.rectangle((x0, y0, x1 - 1, y1 - 1), outline=color, width=width)
        out = np.asarray(canvas).copy()
    return out


def heatmap_panel(
    canvas: OverlayCanvas,
    heat: np.ndarray,
    *,
    title: str,
    box: Sequence[float] | None = None,
    smooth: bool = False,
) -> np.ndarray:
    """The previous `viz.heatmap_panel` path: `canvas.render`, the previous draw_box, colour bar."""
    lo, hi = canvas.value_range(heat)
    frame = canvas.render(heat, vmin=lo, vmax=hi, smooth=smooth)
    if box is not None:
        frame = draw_box(frame, box, color=CROP_COLOR, source_size=canvas.source_size)
    return add_colorbar(frame, vmin=lo, vmax=hi, label="attention", title=title)
