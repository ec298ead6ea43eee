"""Slides: several captioned panels on one 16:9 canvas, and an atomic PNG writer."""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from viz.draw import INK, MUTED_INK, PAPER, load_font, text_size, to_rgb_array

SLIDE_SIZE = (1920, 1080)  # full-HD 16:9, the usual projector resolution


def _fit_text(text: str, max_width: int, size: int, *, bold: bool = False) -> str:
    """`text`, shortened with "…" if it is wider than `max_width` at this font size."""
    font = load_font(size, bold=bold)
    if text_size(text, font)[0] <= max_width:
        return text
    while text and text_size(text + "…", font)[0] > max_width:
        text = text[:-1]
    return text + "…"


def slide_figure(
    panels: Sequence[tuple[str, np.ndarray | Image.Image]],
    *,
    title: str,
    subtitle: str | None = None,
    columns: int = 3,
    size: tuple[int, int] = SLIDE_SIZE,
) -> np.ndarray:
    """Lay out captioned panels in a grid under a title, as one slide image.

    Each panel is scaled (up or down, aspect kept) to fill its grid cell and centred above its
    caption.

    Args:
        panels: (caption, image) pairs in reading order; images are uint8 RGB arrays or PIL.
        title: Slide title, top left, bold.
        subtitle: Optional second line under the title (e.g. the question and answer).
        columns: Panels per row (fewer if there are fewer panels), >= 1.
        size: (width, height) of the slide in pixels.

    Returns:
        uint8 RGB array [height, width, 3].
    """
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    slide = Image.new("RGB", size, PAPER)
    margin = round(size[1] * 0.035)
    top = _draw_header(slide, title, subtitle, margin) + margin // 2
    if panels:
        n_cols = min(columns, len(panels))
        n_rows = math.ceil(len(panels) / n_cols)
        gap = margin // 2
        cell_w = (size[0] - 2 * margin - (n_cols - 1) * gap) // n_cols
        cell_h = (size[1] - top - margin - (n_rows - 1) * gap) // n_rows
        for position, (caption, panel) in enumerate(panels):
            row, col = divmod(position, n_cols)
            cell = (margin + col * (cell_w + gap), top + row * (cell_h + gap), cell_w, cell_h)
            _paste_panel(slide, panel, caption, cell)
    return np.asarray(slide).copy()


def _draw_header(slide: Image.Image, title: str, subtitle: str | None, margin: int) -> int:
    """Draw the title (and subtitle) at the top left; return the y just below them."""
    draw = ImageDraw.Draw(slide)
    title_px, subtitle_px = round(slide.height * 0.05), round(slide.height * 0.03)
    text_width = slide.width - 2 * margin
    y = margin
    title = _fit_text(title, text_width, title_px, bold=True)
    draw.text((margin, y), title, font=load_font(title_px, bold=True), fill=INK)
    y += round(title_px * 1.3)
    if subtitle:
        subtitle = _fit_text(subtitle, text_width, subtitle_px)
        draw.text((margin, y), subtitle, font=load_font(subtitle_px), fill=MUTED_INK)
        y += round(subtitle_px * 1.4)
    return y


def _paste_panel(
    slide: Image.Image,
    panel: np.ndarray | Image.Image,
    caption: str,
    cell: tuple[int, int, int, int],
) -> None:
    """Scale `panel` to fit the cell (x, y, width, height) and write its caption below it."""
    x, y, width, height = cell
    caption_px = round(slide.height * 0.028)
    caption_h = round(caption_px * 1.5)
    image = Image.fromarray(to_rgb_array(panel))
    scale = min(width / image.width, (height - caption_h) / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    fitted = image.resize(size, Image.Resampling.LANCZOS)
    top = y + (height - caption_h - fitted.height) // 2  # centre image + caption in the cell
    slide.paste(fitted, (x + (width - fitted.width) // 2, top))
    ImageDraw.Draw(slide).text(
        (x + width // 2, top + fitted.height + caption_h // 2),
        _fit_text(caption, width, caption_px),
        font=load_font(caption_px),
        fill=INK,
        anchor="mm",
    )


def save_png(image: np.ndarray | Image.Image, path: str | os.PathLike[str]) -> Path:
    """Write a PNG atomically: to a temporary file in the same folder, then `os.replace`.

    A reader never sees a half-written file, and a failed write leaves no temporary file.

    Args:
        image: uint8 RGB array [h, w, 3] or PIL image.
        path: Destination file; its folder must exist.

    Returns:
        The destination path.
    """
    target = Path(path)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(to_rgb_array(image))
    # A unique hidden name in the same folder (same file system, so the rename is atomic);
    # opened with "xb" so the file gets the usual permissions, not mkstemp's private 0600.
    temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "xb") as stream:
            pil.save(stream, format="PNG")
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
