"""A small table drawn as a picture, for slides: e.g. the VAT table next to the heat maps.

Text in, uint8 RGB out. Cells are drawn in DejaVu Sans (numbers right-aligned, so decimal points
line up), the header bold on a grey band, and marked rows (e.g. the generated token) bold in the
chosen-layer colour, so the table reads the same as the app's dataframe on a projector.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np
from PIL import Image, ImageDraw

from viz.draw import CHOSEN_COLOR, INK, PAPER, load_font, text_size

_HEADER_FILL = (236, 236, 236)
_STRIPE_FILL = (248, 248, 248)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def table_image(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    marked: Collection[int] = (),
    font_px: int = 28,
    padding: int | None = None,
) -> np.ndarray:
    """Render a table as an image sized to its content.

    Args:
        headers: Column titles.
        rows: Cell values (converted with `str`); every row has len(headers) cells.
        marked: Indices of rows to emphasise (bold, in `CHOSEN_COLOR`).
        font_px: Font height in pixels, >= 6.
        padding: Space around cell text in pixels (default: half the font size).

    Returns:
        uint8 RGB array [height, width, 3].
    """
    if font_px < 6:
        raise ValueError(f"font_px must be >= 6, got {font_px}")
    if any(len(row) != len(headers) for row in rows):
        raise ValueError("every row must have one cell per header")
    pad = font_px // 2 if padding is None else padding
    regular, bold = load_font(font_px), load_font(font_px, bold=True)
    cells = [[str(value).strip() for value in row] for row in rows]
    widths = [
        max([text_size(h, bold)[0]] + [text_size(row[col], bold)[0] for row in cells])
        for col, h in enumerate(headers)
    ]
    numeric = [
        all(_is_number(row[col]) for row in cells if row[col]) and any(row[col] for row in cells)
        for col in range(len(headers))
    ]  # right-aligned columns, header included
    row_h = round(font_px * 1.25) + pad
    width = sum(widths) + 2 * pad * len(headers)
    canvas = Image.new("RGB", (width, row_h * (len(cells) + 1)), PAPER)
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, width, row_h - 1), fill=_HEADER_FILL)
    for index, row in enumerate([list(headers), *cells]):
        top = index * row_h
        if index > 0 and index % 2 == 0:
            draw.rectangle((0, top, width, top + row_h - 1), fill=_STRIPE_FILL)
        emphasis = index == 0 or (index - 1) in marked
        font = bold if emphasis else regular
        color = CHOSEN_COLOR if index > 0 and (index - 1) in marked else INK
        x = 0
        for col, text in enumerate(row):
            right = numeric[col]
            anchor_x = x + pad + widths[col] if right else x + pad
            draw.text(
                (anchor_x, top + row_h // 2),
                text,
                font=font,
                fill=color,
                anchor="rm" if right else "lm",
            )
            x += widths[col] + 2 * pad
    return np.asarray(canvas).copy()
