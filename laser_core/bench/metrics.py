"""The benchmarks' own metrics, as pure functions: VQA accuracy, A-OKVQA DA, POPE, map aggregation.

Each function re-implements what the benchmark's reference evaluation computes (read, not
copied; the sources are named in each docstring), so that numbers from this runner can be set
next to published ones:

- TextVQA: answers and prediction normalised as the EvalAI answer processor of MMF / Pythia
  does (the processor TextVQA's evaluation and LLaVA's `m4c_evaluator.py` use), then the VQA
  accuracy `min(1, matches / 3)` averaged over the ten leave-one-out subsets of the human answers.
- A-OKVQA, Direct Answer: `min(1, exact matches / 3)` against the ten direct answers as stored
  (allenai/aokvqa `evaluation/eval_predictions.py`), on the normalised prediction.
- POPE: the yes/no parsing and the accuracy, precision, recall, F1 and yes-ratio of POPE's
  `evaluate.py` (AoiDragon/POPE).
- RefCOCO: attention aggregation (`laser_core.crop.box_mass_share`) and the pointing rate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np

# --- answer normalisation (EvalAI / MMF answer processor) ------------------------------------
# Punctuation the processor removes or turns into a space. The period has its own rule; ':' and
# the apostrophe are kept (they are in the original VQA list, not in EvalAI's).
_PUNCTUATION = tuple(';/[]"{}()=+\\_-><@`,?!')
_PERIOD = re.compile(r"\.(?!\d)")  # a period not followed by a digit ("3.5" keeps its period)
_PERIOD_MAX = 32  # the reference passes re.UNICODE (= 32) where re.sub takes `count`
_COMMA_BETWEEN_DIGITS = re.compile(r"(?<=\d),+(?=\d)")
_NUMBER_WORDS = "zero one two three four five six seven eight nine ten".split()
_NUMBERS = {word: str(i) for i, word in enumerate(_NUMBER_WORDS)} | {"none": "0"}
_ARTICLES = frozenset({"a", "an", "the"})
# Contracted forms the processor restores. The key of each is the form written without one of
# its apostrophes (every single omission: "hadnt've" and "hadn'tve" both give "hadn't've").
_CONTRACTED = """
ain't aren't can't could've couldn't couldn't've didn't doesn't don't hadn't hadn't've hasn't
haven't he'd he'd've he's how'd how'll how's isn't it'd it'd've it'll ma'am mightn't mightn't've
might've mustn't must've needn't not've o'clock oughtn't 'ow's'at shan't she'd've should've
shouldn't shouldn't've somebody'd've somebody'll somebody's someone'd someone'd've someone'll
someone's something'd something'd've something'll that's there'd there'd've there're there's
they'd they'd've they'll they're they've 'twas wasn't we'd've we've weren't what'll what're
what's what've when's where'd where's where've who'd who'd've who'll who's who've why'll why're
why's won't would've wouldn't wouldn't've y'all y'all'll y'all'd've you'd you'd've you'll
you're you've
""".split()


def _contractions() -> dict[str, str]:
    table: dict[str, str] = {}
    for form in _CONTRACTED:
        cuts = [i for i, c in enumerate(form) if c == "'"]
        for i in cuts:
            table[form[:i] + form[i + 1 :]] = form
    # A quirk of the reference table, kept for identical scores: it maps this one backwards.
    table["somebody'd"] = "somebodyd"
    return table


_CONTRACTIONS = _contractions()


def normalize_answer(text: str) -> str:
    """An answer as the EvalAI answer processor normalises it before matching.

    Steps, in the reference's order: lower case; drop commas and question marks; split "'s"
    off its word; whitespace to spaces; punctuation removed (when it touches a space) or turned
    into a space (inside a word); periods not followed by a digit removed; number words to digits;
    articles dropped; common contractions restored ("dont" -> "don't").

    Source: `EvalAIAnswerProcessor` of facebookresearch/mmf (`pythia/tasks/processors.py`), as
    copied into LLaVA's `llava/eval/m4c_evaluator.py`; its tables follow GT-Vision-Lab/VQA's
    `vqaEval.py`. Capitalised keys of the reference contraction table ("Im", "Ive") can never
    match lower-cased text and are left out; the mapping is otherwise the same.
    """
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    text = text.replace("\n", " ").replace("\t", " ").strip()
    text = _punctuation(text)
    words = [_NUMBERS.get(word, word) for word in text.lower().split()]
    words = [_CONTRACTIONS.get(word, word) for word in words if word not in _ARTICLES]
    return " ".join(words)


def _punctuation(text: str) -> str:
    out = text
    digits_comma = _COMMA_BETWEEN_DIGITS.search(text) is not None
    for mark in _PUNCTUATION:
        # The test looks at the text as it came in, not as earlier marks left it.
        if f"{mark} " in text or f" {mark}" in text or digits_comma:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return _PERIOD.sub("", out, count=_PERIOD_MAX)


# --- accuracy ------------------------------------------------------------------------------
def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """TextVQA's accuracy of one prediction against the human answers, in [0, 1].

    Both sides are normalised (`normalize_answer`); for each human answer left out in turn, the
    score is `min(1, matches among the other answers / 3)`; the result is their mean. With ten
    answers: 3 or more matches give 1, 2 give 0.6 (4 subsets see 1 match, 6 see 2), 1 gives 0.3.

    Source: `TextVQAAccuracyEvaluator` (LLaVA `m4c_evaluator.py`, MMF `TextVQAAccuracy`).
    """
    if not answers:
        raise ValueError("vqa_accuracy needs at least one human answer")
    guess = normalize_answer(prediction)
    hits = [normalize_answer(answer) == guess for answer in answers]
    total = sum(hits)
    return float(np.mean([min(1.0, (total - hit) / 3.0) for hit in hits]))


def aokvqa_accuracy(prediction: str, direct_answers: Sequence[str]) -> float:
    """A-OKVQA Direct Answer accuracy: `min(1, exact matches among the direct answers / 3)`.

    The prediction is normalised (`normalize_answer`); the direct answers are compared as the
    file stores them (they are already normalised), with no leave-one-out, as the reference does.

    Source: `eval_aokvqa` in allenai/aokvqa `evaluation/eval_predictions.py`.
    """
    guess = normalize_answer(prediction)
    return min(1.0, sum(guess == answer for answer in direct_answers) / 3.0)


def pope_parse(answer: str) -> Literal["yes", "no"]:
    """POPE's reading of a free-form answer: "no" if its first sentence has the word "no",
    "No" or "not" (case-sensitive, commas dropped, split on spaces); "yes" otherwise.

    Source: AoiDragon/POPE `evaluate.py` (also LLaVA's `eval_pope.py`).
    """
    first = answer.split(".")[0] if "." in answer else answer
    words = first.replace(",", "").split(" ")
    return "no" if {"No", "no", "not"} & set(words) else "yes"


def pope_metrics(predictions: Sequence[str], labels: Sequence[str]) -> dict[str, float]:
    """Accuracy, precision, recall, F1 and the yes-ratio of parsed answers against labels.

    Args:
        predictions: "yes" / "no" (from `pope_parse`).
        labels: The file's labels; "no" is negative, anything else positive (as the reference).

    Returns:
        `{"accuracy", "precision", "recall", "f1", "yes_ratio", "n", "tp", "fp", "tn", "fn"}`;
        a ratio whose denominator is 0 is 0.0 (the reference would divide by zero).
    """
    if len(predictions) != len(labels):
        raise ValueError(f"{len(predictions)} predictions for {len(labels)} labels")
    pred = [p != "no" for p in predictions]
    gold = [g != "no" for g in labels]
    tp = sum(p and g for p, g in zip(pred, gold, strict=True))
    fp = sum(p and not g for p, g in zip(pred, gold, strict=True))
    tn = sum(not p and not g for p, g in zip(pred, gold, strict=True))
    fn = sum(not p and g for p, g in zip(pred, gold, strict=True))
    n = len(pred)
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(tp + tn, n),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "yes_ratio": _ratio(sum(pred), n),
        "n": n,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
    }


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0


# --- maps ----------------------------------------------------------------------------------
def pointing_hit(heat: np.ndarray, cell_boxes: np.ndarray, box: Sequence[float]) -> bool:
    """Whether the map's peak falls inside `box` (x0, y0, x1, y1): the pointing game.

    The peak is the cell of largest value among cells with a footprint in the image (LLaVA's
    padding cells have none); ties go to the first in row-major order. It hits when the centre
    of its footprint lies inside the box (edges included). An all-zero map never hits.

    Args:
        heat: [rows, cols] map, >= 0.
        cell_boxes: [rows, cols, 4] footprints (x0, y0, x1, y1) in original pixels.
    """
    values = np.asarray(heat, dtype=np.float64)
    boxes = np.asarray(cell_boxes, dtype=np.float64)
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    values = np.where(area > 0, values, -np.inf)
    if not np.isfinite(values).any() or values.max() <= 0:
        return False
    row, col = np.unravel_index(int(np.argmax(values)), values.shape)
    x0, y0, x1, y1 = boxes[row, col]
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return bool(box[0] <= cx <= box[2] and box[1] <= cy <= box[3])


def mean_se(values: Iterable[float]) -> dict[str, float]:
    """`{"mean", "se", "n"}`: the mean and its standard error (sample std / sqrt(n)).

    NaN where undefined (no value; one value for the error).
    """
    x = np.asarray(list(values), dtype=np.float64)
    mean = float(x.mean()) if len(x) else math.nan
    se = float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan
    return {"mean": mean, "se": se, "n": int(len(x))}


def layer_counts(layers: Iterable[int], n_layers: int) -> list[int]:
    """How often each layer 0 .. n_layers - 1 was chosen (Figure 5)."""
    counts = [0] * n_layers
    for layer in layers:
        counts[int(layer)] += 1
    return counts
