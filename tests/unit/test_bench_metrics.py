"""The benchmark metrics on hand-made predictions, against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from laser_core.bench.metrics import (
    aokvqa_accuracy,
    layer_counts,
    mean_se,
    normalize_answer,
    pointing_hit,
    pope_metrics,
    pope_parse,
    vqa_accuracy,
)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Red", "red"),  # case
        ("  The Red. ", "red"),  # article, final period, spaces
        ("an apple", "apple"),
        ("a", ""),
        ("two dogs", "2 dogs"),  # number words
        ("None", "0"),
        ("ten", "10"),
        ("eleven", "eleven"),  # only zero..ten (and none) are mapped
        ("dont", "don't"),  # contractions restored
        ("isnt it", "isn't it"),
        ("hadnt've", "hadn't've"),
        ("hadn'tve", "hadn't've"),
        ("somebody'd", "somebodyd"),  # the reference table's one backwards entry
        ("im", "im"),  # its capitalised keys ("Im") never match lower-cased text
        ("3.5", "3.5"),  # a period before a digit stays
        ("end.", "end"),
        ("1,000", "1000"),  # commas are dropped
        ("Hello, world?", "hello world"),
        ("coca-cola", "coca cola"),  # punctuation inside a word becomes a space
        ("coca - cola", "coca cola"),  # next to a space it is removed
        ("(5)", "5"),
        ("yes!", "yes"),
        ("man's hat", "man 's hat"),  # "'s" split off its word
        ("it's", "it 's"),
        ("red/blue", "red blue"),
        ("left:right", "left:right"),  # ':' is not in EvalAI's list
        ("tab\there", "tab here"),
    ],
)
def test_answer_normalisation(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


def test_normalisation_strips_at_most_32_periods_as_the_reference() -> None:
    # The reference passes re.UNICODE (32) as re.sub's `count`.
    assert normalize_answer("." * 40) == "." * 8


@pytest.mark.parametrize(
    ("matches", "expected"),
    [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)],
)
def test_vqa_accuracy_leave_one_out(matches: int, expected: float) -> None:
    # k matching answers: leaving one of them out leaves k - 1 matches, any other leaves k.
    # 3 matches: (3 * min(1, 2/3) + 7 * min(1, 3/3)) / 10 = (2 + 7) / 10 = 0.9.
    answers = ["red"] * matches + ["blue"] * (10 - matches)
    assert vqa_accuracy("red", answers) == pytest.approx(expected)


def test_vqa_accuracy_normalises_both_sides() -> None:
    answers = ["two", "2", "Two."] + ["three"] * 7  # three spellings of "2"
    assert vqa_accuracy("the two", answers) == pytest.approx(0.9)
    assert vqa_accuracy("3", answers) == pytest.approx(1.0)
    assert vqa_accuracy("four", answers) == 0.0
    with pytest.raises(ValueError, match="human answer"):
        vqa_accuracy("x", [])


def test_aokvqa_accuracy_is_the_official_direct_answer_rule() -> None:
    direct = ["cab"] * 2 + ["taxi"] * 8
    assert aokvqa_accuracy("Cab.", direct) == pytest.approx(2 / 3)  # prediction normalised
    assert aokvqa_accuracy("the cab", direct) == pytest.approx(2 / 3)
    assert aokvqa_accuracy("taxi", direct) == 1.0
    assert aokvqa_accuracy("taxi", ["taxi"] + ["cab"] * 9) == pytest.approx(1 / 3)  # no LOO
    assert aokvqa_accuracy("bus", direct) == 0.0
    assert aokvqa_accuracy("cab", ["Cab"] * 3) == 0.0  # direct answers are taken as stored


@pytest.mark.parametrize(
    ("answer", "parsed"),
    [
        ("Yes", "yes"),
        ("Yes, there is a dog.", "yes"),
        ("No, there is not.", "no"),
        ("no", "no"),
        ("There is no dog in the image.", "no"),
        ("The dog is not there", "no"),
        ("Yes. No dog though.", "yes"),  # only the first sentence counts
        ("No,there", "yes"),  # commas are deleted, not spaced: the word is "Nothere"
        ("NO", "yes"),  # case-sensitive, as the reference
        ("Not really", "yes"),  # "Not" is not one of its words
        ("", "yes"),
    ],
)
def test_pope_parse(answer: str, parsed: str) -> None:
    assert pope_parse(answer) == parsed


def test_pope_metrics_by_hand() -> None:
    predictions = ["yes", "yes", "no", "no", "yes"]
    labels = ["yes", "no", "no", "yes", "yes"]
    m = pope_metrics(predictions, labels)  # TP 2 (0, 4), FP 1 (1), TN 1 (2), FN 1 (3)
    assert (m["tp"], m["fp"], m["tn"], m["fn"], m["n"]) == (2, 1, 1, 1, 5)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["yes_ratio"] == pytest.approx(3 / 5)
    none_yes = pope_metrics(["no", "no"], ["yes", "no"])
    assert (none_yes["precision"], none_yes["recall"], none_yes["f1"]) == (0.0, 0.0, 0.0)
    assert none_yes["accuracy"] == 0.5
    with pytest.raises(ValueError):
        pope_metrics(["yes"], [])


def _grid() -> np.ndarray:
    """2 x 2 cells of 10 px: (x0, y0, x1, y1) per (row, col)."""
    boxes = np.zeros((2, 2, 4))
    for row in range(2):
        for col in range(2):
            boxes[row, col] = (10 * col, 10 * row, 10 * col + 10, 10 * row + 10)
    return boxes


def test_pointing_hit_uses_the_peak_cell_centre() -> None:
    heat = np.array([[0.1, 0.2], [0.6, 0.1]])  # peak at row 1, col 0: centre (5, 15)
    assert pointing_hit(heat, _grid(), (0, 10, 10, 20))
    assert pointing_hit(heat, _grid(), (5, 15, 6, 16))  # edges count
    assert not pointing_hit(heat, _grid(), (10, 0, 20, 10))
    assert not pointing_hit(np.zeros((2, 2)), _grid(), (0, 0, 20, 20))


def test_pointing_ignores_cells_without_footprint() -> None:
    boxes = _grid()
    boxes[1, 0] = (0, 20, 0, 20)  # a padding cell: no area in the image
    heat = np.array([[0.1, 0.2], [0.9, 0.1]])
    assert pointing_hit(heat, boxes, (10, 0, 20, 10))  # the peak among real cells: (0, 1)


def test_mean_se_and_layer_counts() -> None:
    stats = mean_se([1.0, 2.0, 3.0])
    assert stats["mean"] == 2.0 and stats["n"] == 3
    assert stats["se"] == pytest.approx(1 / math.sqrt(3))
    assert math.isnan(mean_se([5.0])["se"]) and math.isnan(mean_se([])["mean"])
    assert layer_counts([1, 1, 3], 4) == [0, 2, 0, 1]
