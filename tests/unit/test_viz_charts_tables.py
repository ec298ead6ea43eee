"""VAQ chart, VAT table, slide layout and atomic PNG saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from viz import (
    CHOSEN_COLOR,
    STATIC_COLOR,
    VAT_HEADERS,
    bar_colors,
    format_token,
    save_png,
    slide_figure,
    vaq_chart,
    vat_rows,
)


def color_columns(image: np.ndarray, color: str) -> np.ndarray:
    """x positions of pixels that have exactly `color`."""
    target = np.array(Image.new("RGB", (1, 1), color).getpixel((0, 0)))
    return np.nonzero((image == target).all(axis=2))[1]


# --- VAQ chart ---------------------------------------------------------------------------


def test_bar_colors_highlight_only_the_chosen_layer():
    colors = bar_colors(32, chosen=17)
    assert len(colors) == 32
    assert [i for i, c in enumerate(colors) if c == CHOSEN_COLOR] == [17]
    with pytest.raises(ValueError, match="chosen"):
        bar_colors(32, chosen=32)


def test_vaq_chart_is_rgb_and_the_highlight_moves_with_the_chosen_layer():
    scores = np.linspace(0.1, 0.2, 32)
    early = vaq_chart(scores, chosen=3, static=14, size=(800, 450))
    late = vaq_chart(scores, chosen=28, static=14, size=(800, 450))

    assert early.shape == (450, 800, 3) and early.dtype == np.uint8
    early_x, late_x = color_columns(early, CHOSEN_COLOR), color_columns(late, CHOSEN_COLOR)
    assert early_x.size > 100 and late_x.size > 100
    assert np.median(early_x) < 0.4 * 800 < 0.6 * 800 < np.median(late_x)
    assert color_columns(early, STATIC_COLOR).size > 0  # the static layer's outline


def test_vaq_chart_handles_all_zero_scores_and_rejects_bad_static():
    chart = vaq_chart(np.zeros(24), chosen=0)
    assert chart.ndim == 3 and np.isfinite(chart).all()
    with pytest.raises(ValueError, match="static"):
        vaq_chart(np.ones(4), chosen=0, static=4)


# --- VAT table -------------------------------------------------------------------------


def candidate(token: str, token_id: int, z_plus: float, z_minus: float) -> dict:
    vat = z_plus - z_minus
    return {
        "token": token,
        "token_id": token_id,
        "z_plus": z_plus,
        "z_minus": z_minus,
        "vat": vat,
        "score": z_plus + vat,
        "p_plus": 0.5,
        "p_minus": 0.5,
        "p_score": 0.123456,
    }


STEPS = [
    {
        "index": 0,
        "token": "▁Yes",
        "token_id": 7,
        "vat_applied": True,
        "candidates": [candidate("▁Yes", 7, 12.5, 3.25), candidate("▁No", 9, 11.0, 10.0)],
    },
    {
        "index": 1,
        "token": "</s>",
        "token_id": 2,
        "vat_applied": True,
        "candidates": [
            candidate("\n", 13, 9.0, -1.0),
            candidate("</s>", 2, 8.0, -100.0),
            candidate(" the", 5, 1.0, 0.5),
        ],
    },
]


def test_vat_rows_one_row_per_candidate_and_one_mark_per_step():
    headers, rows = vat_rows(STEPS)

    assert headers == VAT_HEADERS
    assert len(rows) == 5 and all(len(row) == len(headers) for row in rows)
    chosen = headers.index("chosen")
    for step in (0, 1):
        marks = [row[chosen] for row in rows if row[0] == step]
        assert marks.count("✓") == 1 and marks.count("") == len(marks) - 1
    assert rows[3][chosen] == "✓"  # "</s>" was generated though it was not the top candidate


def test_vat_rows_show_the_generated_token_once_per_step_readably():
    _, rows = vat_rows(STEPS)
    assert [row[1] for row in rows] == ["␣Yes", "", "</s>", "", ""]
    assert [row[2] for row in rows] == ["␣Yes", "␣No", "⏎", "</s>", "␣the"]


def test_vat_rows_round_and_align_numbers():
    headers, rows = vat_rows(STEPS, decimals=2)
    z_minus, p = headers.index("z-"), headers.index("p(s)")

    assert rows[0][z_minus].strip() == "3.25" and rows[0][p].strip() == "0.12"
    assert rows[3][z_minus] == "-100.00"
    for col in range(3, 8):
        assert len({len(row[col]) for row in rows}) == 1  # fixed width per column
    assert vat_rows([])[1] == []


@pytest.mark.parametrize(
    ("token", "shown"),
    [("ĠParis", "␣Paris"), ("Ċ", "⏎"), ("<0x0A>", "⏎"), ("\t", "⇥"), ("", '""'), ("\x07", "\\x07")],
)
def test_format_token_makes_whitespace_and_control_characters_visible(token, shown):
    assert format_token(token) == shown


# --- slides and files ------------------------------------------------------------------


def test_slide_figure_is_16_9_and_contains_every_panel():
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    panels = [(f"panel {i}", np.full((300, 400, 3), c, np.uint8)) for i, c in enumerate(colors)]
    slide = slide_figure(panels, title="LASER", subtitle="What is on the roof?", columns=3)

    assert slide.shape == (1080, 1920, 3) and slide.dtype == np.uint8
    for color in colors:
        assert (slide == color).all(axis=2).sum() > 10_000
    assert slide_figure([], title="empty").shape == (1080, 1920, 3)
    with pytest.raises(ValueError, match="columns"):
        slide_figure(panels, title="x", columns=0)


def test_save_png_writes_a_readable_file_and_no_temp_file(tmp_path: Path):
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), np.uint8)
    target = save_png(image, tmp_path / "slide.png")
    save_png(image[::-1], target)  # overwriting works too

    with Image.open(target) as reopened:
        np.testing.assert_array_equal(np.asarray(reopened.convert("RGB")), image[::-1])
    assert [p.name for p in tmp_path.iterdir()] == ["slide.png"]


def test_save_png_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def broken_save(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_png(np.zeros((4, 4, 3), np.uint8), tmp_path / "out.png")
    assert list(tmp_path.iterdir()) == []
