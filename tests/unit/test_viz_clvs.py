"""CLVS charts render to RGB arrays, mark the stop layer, and reject bad input."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from viz import clvs_charts
from viz.clvs_charts import attention_decay_chart, uncertainty_chart

BEFORE = np.array([0.30, 0.35, 0.45, 0.25, 0.10, 0.05, 0.04, 0.04])  # focus found, then lost
AFTER = np.array([0.30, 0.38, 0.48, 0.40, 0.30, 0.12, 0.05, 0.04])
UNCERTAINTY = np.array([np.nan] * 5 + [0.8, 0.4, np.nan])


def _has_color(image: np.ndarray, rgb: tuple[int, int, int], tol: int = 30) -> bool:
    return bool((np.abs(image.astype(int) - np.array(rgb)).max(-1) <= tol).any())


def test_attention_decay_chart_is_rgb_and_draws_both_curves() -> None:
    image = attention_decay_chart(BEFORE, AFTER, stop_layer=4, size=(800, 500))
    assert image.shape == (500, 800, 3) and image.dtype == np.uint8
    assert _has_color(image, (0xD5, 0x5E, 0x00))  # CLVS curve (vermillion)
    assert _has_color(image, (0x00, 0x72, 0xB2))  # stop-layer marker (blue)


def test_attention_decay_chart_changes_with_the_stop_layer() -> None:
    stopped = attention_decay_chart(BEFORE, AFTER, stop_layer=4, region="the box")
    never = attention_decay_chart(BEFORE, AFTER, stop_layer=None, region="the box")
    assert stopped.shape == never.shape and not np.array_equal(stopped, never)
    assert not _has_color(never, (0x00, 0x72, 0xB2), tol=10)  # no stop marker


def test_uncertainty_chart_is_rgb_with_gaps_and_threshold() -> None:
    image = uncertainty_chart(UNCERTAINTY, delta=0.5, stop_layer=6, size=(640, 400))
    assert image.shape == (400, 640, 3) and image.dtype == np.uint8
    assert _has_color(image, (0xD5, 0x5E, 0x00))  # threshold line
    empty = uncertainty_chart(np.full(8, np.nan), delta=0.5, stop_layer=None, size=(640, 400))
    assert empty.shape == image.shape


def test_charts_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="equal"):
        attention_decay_chart(BEFORE, AFTER[:-1], stop_layer=None)
    with pytest.raises(ValueError, match="outside"):
        attention_decay_chart(BEFORE, AFTER, stop_layer=8)
    with pytest.raises(ValueError, match="delta"):
        uncertainty_chart(UNCERTAINTY, delta=1.5, stop_layer=None)
    with pytest.raises(ValueError, match="outside"):
        uncertainty_chart(UNCERTAINTY, delta=0.5, stop_layer=-1)


def test_no_figure_is_left_open() -> None:
    import matplotlib.pyplot as plt

    open_before = plt.get_fignums()
    attention_decay_chart(BEFORE, AFTER, stop_layer=2)
    uncertainty_chart(UNCERTAINTY, delta=0.5, stop_layer=None)
    assert plt.get_fignums() == open_before


def test_viz_never_imports_the_model_stack() -> None:
    tree = ast.parse(Path(clvs_charts.__file__).read_text())
    names = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    names += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] in ("transformers", "torch", "laser_core")]
