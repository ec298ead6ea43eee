"""Titled heat-map panels with a labelled colour bar, drawn with PIL (fast enough per frame).

A panel is an overlay frame plus a white title strip on top and a vertical colour bar on the
right. Font sizes follow the panel size, so a 1024-px panel stays legible on a projector.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.ticker import MaxNLocator
from PIL import Image, ImageDraw

from viz.draw import CROP_COLOR, INK, PAPER, draw_box, load_font, text_size, to_rgb_array
from viz.overlay import OverlayCanvas, colormap_lut

_FONT_FRACTION = 0.05  # font height as a fraction of sqrt(panel area): ~44 px at 1024 x 768
_MIN_FONT = 14  # smallest font in pixels, however small the panel
_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _font_px(panel: np.ndarray) -> int:
    """Base font size in pixels for a panel [h, w, 3]; still legible when shown half-size."""
    height, width = panel.shape[:2]
    return max(_MIN_FONT, round(_FONT_FRACTION * (height * width) ** 0.5))


def _ticks(vmin: float, vmax: float) -> list[float]:
    """A few round tick values inside [vmin, vmax] (just vmin for a flat range)."""
    if vmax <= vmin:
        return [vmin]
    values = MaxNLocator(nbins=4).tick_values(vmin, vmax)
    slack = 1e-6 * (vmax - vmin)  # keep round ends lost to float32 rounding of the data
    return [float(v) for v in values if vmin - slack <= v <= vmax + slack]


def _tick_labels(values: Sequence[float]) -> tuple[list[str], str]:
    """Exact tick labels with one shared number of decimals, and a unit suffix for the label.

    Very small or large values are shown as multiples of a power of ten, named in the suffix:
    ticks 0, 2.5, 5 with suffix " (×10⁻⁵)".
    """
    biggest = max(abs(v) for v in values)
    exponent = int(np.floor(np.log10(biggest))) if biggest else 0
    if not -2 <= exponent <= 4:
        values = [v / 10.0**exponent for v in values]
    suffix = "" if -2 <= exponent <= 4 else f" (×10{str(exponent).translate(_SUPERSCRIPTS)})"
    for decimals in range(7):  # fewest decimals that write every tick exactly
        if all(abs(round(v, decimals) - v) <= 1e-9 * max(1.0, abs(v)) for v in values):
            break
    return [f"{v:.{decimals}f}" for v in values], suffix


def _vertical_text(text: str, size: int) -> Image.Image:
    """`text` rendered on white and rotated to read bottom-to-top."""
    font = load_font(size)
    width, height = text_size(text, font)
    strip = Image.new("RGB", (width + 2, height + 4), PAPER)
    ImageDraw.Draw(strip).text((1, 2), text, font=font, fill=INK)
    return strip.rotate(90, expand=True)


def add_colorbar(
    panel: Image.Image | np.ndarray,
    *,
    vmin: float,
    vmax: float,
    cmap: str = "magma",
    label: str,
    title: str | None = None,
) -> np.ndarray:
    """Append a labelled vertical colour bar (and optionally a title strip) to a panel.

    Args:
        panel: uint8 RGB array [h, w, 3] or PIL image, e.g. an overlay frame.
        vmin: Value of the lowest colour (the bar's bottom).
        vmax: Value of the highest colour (the bar's top); >= vmin.
        cmap: Matplotlib colormap name, the one used for the panel.
        label: What the colours measure, written along the bar (e.g. "attention").
        title: Text centred in a strip above panel and bar, e.g. "Raw attention · layer 12".

    Returns:
        New uint8 RGB array [h + title strip, w + bar strip, 3].
    """
    image = to_rgb_array(panel)
    height, width = image.shape[:2]
    size = _font_px(image)
    bar = _colorbar_strip(height, size, vmin=vmin, vmax=vmax, cmap=cmap, label=label)
    head = np.zeros((0, width + bar.shape[1], 3), np.uint8)
    if title is not None:
        head = _title_strip(title, width + bar.shape[1], size)
    # Assemble in one preallocated array: one pass over the pixels instead of several concats.
    out = np.empty((head.shape[0] + height, width + bar.shape[1], 3), np.uint8)
    out[: head.shape[0]] = head
    out[head.shape[0] :, :width] = image
    out[head.shape[0] :, width:] = bar
    return out


def _colorbar_strip(
    height: int, size: int, *, vmin: float, vmax: float, cmap: str, label: str
) -> np.ndarray:
    """White strip [height, w, 3] with the gradient bar, its ticks and the rotated label."""
    tick_font = load_font(round(size * 0.8))
    ticks = _ticks(vmin, vmax)
    labels, suffix = _tick_labels(ticks)
    bar_top, bar_height = round(height * 0.08), round(height * 0.84)
    bar_width, tick_len, gap = max(12, size), max(4, size // 4), max(6, size // 3)
    label_img = _vertical_text(label + suffix, round(size * 0.85))
    label_width = max(text_size(text, tick_font)[0] for text in labels)
    strip_width = gap + bar_width + tick_len + gap + label_width + gap + label_img.width + gap
    strip = Image.new("RGB", (strip_width, height), PAPER)

    gradient = colormap_lut(cmap)[np.linspace(255, 0, bar_height).round().astype(int)]
    bar = np.repeat(gradient[:, None, :], bar_width, axis=1)  # [bar_height, bar_width, 3]
    strip.paste(Image.fromarray(bar), (gap, bar_top))
    draw = ImageDraw.Draw(strip)
    draw.rectangle((gap, bar_top, gap + bar_width - 1, bar_top + bar_height - 1), outline=INK)
    for value, text in zip(ticks, labels, strict=True):
        fraction = 0.0 if vmax <= vmin else min(max((value - vmin) / (vmax - vmin), 0.0), 1.0)
        y = bar_top + round((1 - fraction) * (bar_height - 1))
        x = gap + bar_width
        draw.line((x, y, x + tick_len, y), fill=INK, width=2)
        draw.text((x + tick_len + gap // 2, y), text, font=tick_font, fill=INK, anchor="lm")
    label_x = strip_width - gap - label_img.width
    strip.paste(label_img, (label_x, bar_top + (bar_height - label_img.height) // 2))
    return np.asarray(strip)


def _title_strip(title: str, width: int, size: int) -> np.ndarray:
    """White strip [h, width, 3] with `title` centred, shrunk to fit the width if needed."""
    font = load_font(size, bold=True)
    while size > _MIN_FONT and text_size(title, font)[0] > width - size:
        size -= 2
        font = load_font(size, bold=True)
    strip_height = round(size * 1.8)
    strip = Image.new("RGB", (width, strip_height), PAPER)
    ImageDraw.Draw(strip).text(
        (width // 2, strip_height // 2), title, font=font, fill=INK, anchor="mm"
    )
    return np.asarray(strip)


def heatmap_panel(
    canvas: OverlayCanvas,
    heat: np.ndarray,
    *,
    title: str,
    label: str = "attention",
    box: Sequence[float] | None = None,
    opacity: float = 0.55,
    cmap: str = "magma",
    vmin: float | None = None,
    vmax: float | None = None,
    smooth: bool = False,
) -> np.ndarray:
    """One titled panel: the map over the image, an optional crop box, and its colour bar.

    Args:
        canvas: Geometry for the image and grid (reuse it across frames).
        heat: [rows, cols] map on the visual-token grid, values >= 0.
        title: Strip above the panel, e.g. "Contrastive attention · layer 17".
        label: Colour bar label, what the values measure.
        box: Optional (x0, y0, x1, y1) in ORIGINAL pixels to outline, e.g. the crop box.
        opacity: Weight of the colour in [0, 1].
        cmap: Matplotlib colormap name.
        vmin: Value of the lowest colour (default: minimum over visible cells).
        vmax: Value of the highest colour (default: maximum over visible cells).
        smooth: Interpolate between cell centres instead of flat cells.

    Returns:
        uint8 RGB array [h, w, 3].
    """
    lo, hi = canvas.value_range(heat, vmin=vmin, vmax=vmax)
    frame = canvas.render(heat, opacity=opacity, cmap=cmap, vmin=lo, vmax=hi, smooth=smooth)
    if box is not None:
        frame = draw_box(frame, box, color=CROP_COLOR, source_size=canvas.source_size)
    return add_colorbar(frame, vmin=lo, vmax=hi, cmap=cmap, label=label, title=title)
