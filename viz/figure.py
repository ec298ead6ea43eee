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
    width, height = size
    margin = round(height * 0.035)
    title_px, subtitle_px, caption_px = (round(height * f) for f in (0.05, 0.03, 0.028))
    slide = Image.new("RGB", size, PAPER)
    draw = ImageDraw.Draw(slide)
    text_width = width - 2 * margin
    y = margin
    draw.text(
        (margin, y),
        _fit_text(title, text_width, title_px, bold=True),
        font=load_font(title_px, bold=True),
        fill=INK,
    )
    y += round(title_px * 1.3)
    if subtitle:
        draw.text(
            (margin, y),
            _fit_text(subtitle, text_width, subtitle_px),
            font=load_font(subtitle_px),
            fill=MUTED_INK,
        )
        y += round(subtitle_px * 1.4)
    if not panels:
        return np.asarray(slide).copy()

    y += margin // 2
    n_cols = min(columns, len(panels))
    n_rows = math.ceil(len(panels) / n_cols)
    gap = margin // 2
    cell_w = (width - 2 * margin - (n_cols - 1) * gap) // n_cols
    cell_h = (height - y - margin - (n_rows - 1) * gap) // n_rows
    caption_h = round(caption_px * 1.5)
    caption_font = load_font(caption_px)
    for position, (caption, panel) in enumerate(panels):
        row, col = divmod(position, n_cols)
        x0 = margin + col * (cell_w + gap)
        y0 = y + row * (cell_h + gap)
        image = Image.fromarray(to_rgb_array(panel))
        scale = min(cell_w / image.width, (cell_h - caption_h) / image.height)
        fitted = image.resize(
            (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
            Image.Resampling.LANCZOS,
        )
        top = y0 + (cell_h - caption_h - fitted.height) // 2  # centre image + caption in cell
        slide.paste(fitted, (x0 + (cell_w - fitted.width) // 2, top))
        draw.text(
            (x0 + cell_w // 2, top + fitted.height + caption_h // 2),
            _fit_text(caption, cell_w, caption_px),
            font=caption_font,
            fill=INK,
            anchor="mm",
        )
    return np.asarray(slide).copy()


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
