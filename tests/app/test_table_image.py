"""viz.table_image: the VAT table as a slide picture."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import ImageColor

from viz import CHOSEN_COLOR
from viz.table_image import table_image


def test_table_sized_to_content_with_marked_rows() -> None:
    headers = ["candidate", "z+", "p(s)"]
    rows = [["yes", "1.250", "0.900"], ["no", "-0.500", "0.100"]]
    picture = table_image(headers, rows, marked={0}, font_px=20)
    assert picture.dtype == np.uint8 and picture.ndim == 3
    row_h = picture.shape[0] // 3
    assert picture.shape[0] == 3 * row_h
    chosen = np.array(ImageColor.getrgb(CHOSEN_COLOR))
    band = picture[row_h : 2 * row_h].reshape(-1, 3)  # the marked row
    other = picture[2 * row_h :].reshape(-1, 3)
    assert (np.abs(band - chosen).sum(1) < 60).any()
    assert not (np.abs(other - chosen).sum(1) < 60).any()
    wider = table_image(headers, [["a much longer candidate", "1", "2"]], font_px=20)
    assert wider.shape[1] > picture.shape[1]


def test_table_checks_its_input() -> None:
    with pytest.raises(ValueError, match="one cell per header"):
        table_image(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="font_px"):
        table_image(["a"], [["x"]], font_px=2)
