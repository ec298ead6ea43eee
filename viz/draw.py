"""Shared drawing helpers: palette, fonts, display resizing, boxes and masked cells.

Every picture in LASER Lens uses the same few colours (Okabe-Ito, colour-blind safe) and the
same font (DejaVu Sans, shipped with matplotlib), so slides built from several panels look like
one figure. Boxes and cells are given in ORIGINAL image pixels; pass `source_size` when drawing on
a downscaled display copy and they are scaled with the same pixel-centre rule the overlay uses.
They are drawn with cv2 straight into a copy of the array: no round trip through a PIL image,
3-5x faster than PIL's `ImageDraw` on a 1024-px image (`bench/bench_overlay.py`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import cv2
import numpy as np
from matplotlib import font_manager
from PIL import Image, ImageColor, ImageFont

# Okabe-Ito colours, one meaning each across every panel and chart.
CHOSEN_COLOR = "#D55E00"  # the chosen layer l* (vermillion)
STATIC_COLOR = "#0072B2"  # the model's static layer (blue)
BAR_COLOR = "#B8B8B8"  # every other layer (neutral grey)
CROP_COLOR = "#56B4E9"  # the crop box (sky blue; stands out on magma)
MASK_COLOR = "#CC79A7"  # masked counterfactual cells (reddish purple; rare in photos)
INK = "#222222"  # text and axes
MUTED_INK = "#5A5A5A"  # subtitles, secondary text
PAPER = (255, 255, 255)  # background of title strips, colour bars and slides

Box = tuple[float, float, float, float]  # (x0, y0, x1, y1), x1 and y1 exclusive


@lru_cache(maxsize=32)
def load_font(size: int, *, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans at `size` pixels (matplotlib's bundled font), else Pillow's default font.

    Args:
        size: Font height in pixels, >= 1.
        bold: Use the bold face.

    Returns:
        A PIL font; DejaVu covers the symbols used in titles ("·", "l*", "✓", "␣", "⏎").
    """
    weight = "bold" if bold else "normal"
    props = font_manager.FontProperties(family="DejaVu Sans", weight=weight)
    try:
        return ImageFont.truetype(font_manager.findfont(props, fallback_to_default=True), size)
    except OSError:
        return ImageFont.load_default(size=size)


def text_size(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> tuple[int, int]:
    """Width and height in pixels of `text` drawn with `font` (ink box from the origin)."""
    _, _, right, bottom = font.getbbox(text)
    return int(math.ceil(right)), int(math.ceil(bottom))


def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A PIL image or an array as a uint8 array [height, width, 3].

    The result may share memory with an input array: copy it before writing to it.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an image [height, width, 3|4], got shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3], dtype=np.uint8)


def display_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most `max_side`, keeping aspect.

    Never upscales; each side is at least 1 pixel.
    """
    if max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    scale = min(1.0, max_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def fit_for_display(image: Image.Image | np.ndarray, max_side: int = 1024) -> np.ndarray:
    """Downscale an image for display so its longer side is at most `max_side` pixels.

    Args:
        image: PIL image (any mode) or uint8 array [height, width, 3|4]; any size.
        max_side: Longest side of the result in pixels; smaller images are kept as they are.

    Returns:
        uint8 RGB array [h, w, 3] with the original aspect ratio.
    """
    pil = image if isinstance(image, Image.Image) else Image.fromarray(to_rgb_array(image))
    pil = pil.convert("RGB")
    size = display_size(pil.width, pil.height, max_side)
    if size != pil.size:
        # reducing_gap first box-shrinks by an integer factor, leaving Lanczos at least a 1.5x
        # reduction: 3x faster on large photos and visually the same at display size.
        pil = pil.resize(size, Image.Resampling.LANCZOS, reducing_gap=1.5)
    return np.asarray(pil).copy()


def scale_box(
    box: Sequence[float], source_size: tuple[int, int], target_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Map a box from source pixels to the integer pixel span it covers in the target image.

    A target pixel belongs to the box when its centre lies inside the scaled box, the same rule
    `OverlayCanvas` uses for grid cells, so drawn boxes and painted cells line up exactly.

    Args:
        box: (x0, y0, x1, y1) in source pixels, x1 and y1 exclusive.
        source_size: (width, height) the box refers to.
        target_size: (width, height) of the image drawn on.

    Returns:
        (x0, y0, x1, y1) integer target pixels, clipped to the target, x1 and y1 exclusive.
    """
    sx = target_size[0] / source_size[0]
    sy = target_size[1] / source_size[1]
    x0, y0, x1, y1 = box

    def edge(value: float, scale: float, limit: int) -> int:
        return min(max(math.ceil(value * scale - 0.5), 0), limit)

    return (
        edge(x0, sx, target_size[0]),
        edge(y0, sy, target_size[1]),
        edge(x1, sx, target_size[0]),
        edge(y1, sy, target_size[1]),
    )


def _line_width(size: tuple[int, int], *, thick: bool) -> int:
    """A line width that stays visible when the image is shown full-screen."""
    return max(3 if thick else 2, round(max(size) / (170 if thick else 400)))


def _rgb(color: str) -> tuple[int, int, int]:
    """A PIL colour string ("#D55E00", "red") as an (r, g, b) tuple of ints."""
    red, green, blue = ImageColor.getrgb(color)[:3]
    return red, green, blue


def _outline(
    image: np.ndarray, box: tuple[int, int, int, int], color: tuple[int, int, int], width: int
) -> None:
    """Draw, in place, a `width`-pixel band just inside box (x0, y0, x1, y1), inclusive ends.

    The same pixels as PIL's `rectangle(box, outline=color, width=width)` whenever the box is
    at least `2 * width` pixels on each side; a thinner box is filled (PIL would spill outside).
    Four filled rectangles, which cv2 clips to the image.
    """
    x0, y0, x1, y1 = box
    inner_x0, inner_y0 = min(x0 + width - 1, x1), min(y0 + width - 1, y1)
    inner_x1, inner_y1 = max(x1 - width + 1, x0), max(y1 - width + 1, y0)
    for corner, opposite in (
        ((x0, y0), (x1, inner_y0)),  # top
        ((x0, inner_y1), (x1, y1)),  # bottom
        ((x0, y0), (inner_x0, y1)),  # left
        ((inner_x1, y0), (x1, y1)),  # right
    ):
        cv2.rectangle(image, corner, opposite, color, cv2.FILLED)


def draw_box(
    image: Image.Image | np.ndarray,
    box: Sequence[float],
    *,
    color: str = CROP_COLOR,
    width: int | None = None,
    source_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Outline a box (e.g. the crop) with a thin dark halo so it reads on any background.

    Args:
        image: PIL image or uint8 array [height, width, 3]; not modified.
        box: (x0, y0, x1, y1) in pixels of `source_size` (default: of `image`).
        color: Line colour (any PIL colour string).
        width: Line width in pixels, drawn inside the box (default: scaled to the image).
        source_size: (width, height) the box refers to, e.g. the original image size when
            drawing on a downscaled overlay.

    Returns:
        New uint8 RGB array [height, width, 3].
    """
    out = to_rgb_array(image).copy()
    size = (out.shape[1], out.shape[0])
    width = width if width is not None else _line_width(size, thick=True)
    x0, y0, x1, y1 = scale_box(box, source_size or size, size)
    if x1 <= x0 or y1 <= y0:
        return out
    _outline(out, (x0 - 1, y0 - 1, x1, y1), _rgb(INK), width + 2)  # halo, 1 px outside the box
    _outline(out, (x0, y0, x1 - 1, y1 - 1), _rgb(color), width)
    return out


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
    """Tint, hatch and outline grid cells, e.g. the masked cells of the counterfactual image.

    The diagonal hatch keeps the cells visible on any background, including on a projector.

    Args:
        image: PIL image or uint8 array [height, width, 3]; not modified.
        cell_boxes: [rows, cols, 4] footprint of each cell (x0, y0, x1, y1) in source pixels;
            zero-area cells (outside the image) are skipped.
        cells: [n, 2] (row, col) indices of the cells to mark.
        color: Tint and outline colour.
        alpha: Tint opacity in [0, 1]; 0 draws hatch and outlines only.
        width: Outline and hatch line width in pixels (default: scaled to the image); 0 draws
            neither.
        source_size: (width, height) the boxes refer to (default: the size of `image`).

    Returns:
        New uint8 RGB array [height, width, 3].
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    out = to_rgb_array(image).copy()
    target = (out.shape[1], out.shape[0])
    width = width if width is not None else _line_width(target, thick=False)
    rgb = _rgb(color)
    period = max(4 * width, 4)  # diagonal hatch: `width` lit pixels in every `period`
    spans = []
    for row, col in np.asarray(cells, dtype=int).reshape(-1, 2):
        x0, y0, x1, y1 = scale_box(cell_boxes[row, col], source_size or target, target)
        if x1 > x0 and y1 > y0:
            patch = out[y0:y1, x0:x1]
            patch[:] = cv2.addWeighted(patch, 1 - alpha, np.full_like(patch, rgb), alpha, 0.0)
            yy, xx = np.ogrid[y0:y1, x0:x1]  # image coordinates: the hatch runs on across cells
            patch[(xx + yy) % period < width] = rgb
            spans.append((x0, y0, x1 - 1, y1 - 1))
    if width > 0:
        for span in spans:  # after every tint, so no tint covers a neighbour's outline
            _outline(out, span, rgb, width)
    return out
