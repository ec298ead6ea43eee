"""CLVS kernels on hand-computable inputs: smoothing, memory, entropy, stop rule, positions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from laser_core.clvs.kernels import (
    first_stop_layer,
    init_memory,
    normalised_topk_entropy,
    smooth_row,
    smoothing_stops,
    unified_key_shift,
    update_memory,
)

# Two heads over four keys: text, image, image, text.
ROW = torch.tensor([[0.4, 0.2, 0.2, 0.2], [0.1, 0.6, 0.1, 0.2]])
VISUAL = torch.tensor([False, True, True, False])
MEMORY = torch.tensor([0.5, 0.1])


def test_memory_starts_as_the_max_over_heads() -> None:
    a_vis = torch.tensor([[0.1, 0.3], [0.2, 0.1]])
    torch.testing.assert_close(init_memory(a_vis), torch.tensor([0.2, 0.3]))


def test_smooth_row_by_hand() -> None:
    smoothed = smooth_row(ROW, MEMORY, 0.5, visual=VISUAL)
    # head 0: image part 0.5 * 0.2 + 0.5 * 0.5 = 0.35 and 0.5 * 0.2 + 0.5 * 0.1 = 0.15; sum 1.1
    # head 1: 0.5 * 0.6 + 0.25 = 0.55 and 0.5 * 0.1 + 0.05 = 0.10; sum 0.95
    expected = torch.tensor([[0.4, 0.35, 0.15, 0.2], [0.1, 0.55, 0.1, 0.2]])
    expected = expected / expected.sum(-1, keepdim=True)
    torch.testing.assert_close(smoothed, expected)
    torch.testing.assert_close(smoothed.sum(-1), torch.ones(2))
    # Renormalised by division, not softmax: the text keys keep their ratio.
    assert smoothed[0, 0] / smoothed[0, 3] == pytest.approx(2.0)
    assert torch.equal(ROW, torch.tensor([[0.4, 0.2, 0.2, 0.2], [0.1, 0.6, 0.1, 0.2]]))


def test_lambda_one_keeps_the_row_and_lambda_zero_copies_the_memory() -> None:
    torch.testing.assert_close(smooth_row(ROW, MEMORY, 1.0, visual=VISUAL), ROW)
    copied = smooth_row(ROW, MEMORY, 0.0, visual=VISUAL)
    head0 = torch.tensor([0.4, 0.5, 0.1, 0.2]) / 1.2
    torch.testing.assert_close(copied[0], head0)
    # Every head gets the same image pattern (the memory is broadcast to all heads).
    ratio = copied[:, 1] / copied[:, 2]
    torch.testing.assert_close(ratio, torch.full((2,), 5.0))


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 0.8, 1.0])
def test_smoothed_rows_sum_to_one(lam: float) -> None:
    generator = torch.Generator().manual_seed(0)
    row = torch.softmax(torch.randn(4, 30, generator=generator), dim=-1)
    visual = torch.zeros(30, dtype=torch.bool)
    visual[5:25] = True
    memory = row[:, visual].max(0).values
    smoothed = smooth_row(row, memory, lam, visual=visual)
    torch.testing.assert_close(smoothed.sum(-1), torch.ones(4))
    assert torch.all(smoothed >= 0)


def test_memory_update_by_hand() -> None:
    a_vis = torch.tensor([[0.2, 0.2], [0.6, 0.1]])  # max over heads: [0.6, 0.2]
    updated = update_memory(MEMORY, a_vis, 0.8)
    expected = torch.tensor([0.8 * 0.5 + 0.2 * 0.6, 0.8 * 0.1 + 0.2 * 0.2])
    torch.testing.assert_close(updated, expected)
    torch.testing.assert_close(update_memory(MEMORY, a_vis, 1.0), MEMORY)
    torch.testing.assert_close(update_memory(MEMORY, a_vis, 0.0), torch.tensor([0.6, 0.2]))


def test_normalised_entropy_by_hand() -> None:
    assert float(normalised_topk_entropy(torch.zeros(50), 10)) == pytest.approx(1.0)
    sure = torch.full((50,), -1e4)
    sure[7] = 10.0
    assert float(normalised_topk_entropy(sure, 10)) == pytest.approx(0.0, abs=1e-6)
    # Two equally likely tokens among the top 4, the other two impossible: ln 2 / ln 4 = 0.5.
    two = torch.tensor([0.0, 0.0, float("-inf"), float("-inf"), float("-inf")])
    assert float(normalised_topk_entropy(two, 4)) == pytest.approx(0.5)
    # Only the top k count: the tail does not change the value.
    logits = torch.tensor([3.0, 2.0, 1.0, -5.0, -6.0])
    top3 = torch.softmax(torch.tensor([3.0, 2.0, 1.0]), 0)
    expected = -(top3 * top3.log()).sum() / math.log(3)
    assert float(normalised_topk_entropy(logits, 3)) == pytest.approx(float(expected))


def test_entropy_batches_and_caps_k() -> None:
    logits = torch.stack([torch.zeros(6), torch.arange(6.0) * 100])
    values = normalised_topk_entropy(logits, 10)  # k capped at the vocabulary size, 6
    assert values.shape == (2,)
    assert values[0] == pytest.approx(1.0) and values[1] == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="k >= 2"):
        normalised_topk_entropy(torch.zeros(1), 10)


def test_stop_rule_on_a_synthetic_sequence() -> None:
    uncertainty = np.array([np.nan, 0.9, 0.8, 0.6, 0.45, 0.3])
    assert first_stop_layer(uncertainty, 0.5, 3) == 4  # first checked layer below delta
    assert first_stop_layer(uncertainty, 0.5, 5) == 5
    assert first_stop_layer(uncertainty, 0.2, 3) is None  # never sure enough
    assert first_stop_layer(uncertainty, 0.95, 0) == 1  # NaN (not computed) is skipped
    # Layers before the check are never considered, however low.
    assert first_stop_layer(np.array([0.1, 0.9, 0.9]), 0.5, 1) is None
    # Strictly below: an uncertainty equal to delta does not stop.
    assert not smoothing_stops(0.5, 0.5) and smoothing_stops(0.4999, 0.5)
    assert first_stop_layer(np.array([0.9, 0.5, 0.4]), 0.5, 0) == 2


def test_unified_shift_1d_by_hand() -> None:
    positions = torch.arange(10)[None]  # [1 component, 10 keys]
    visual = torch.zeros(10, dtype=torch.bool)
    visual[2:6] = True  # four image tokens at 2..5
    shift = unified_key_shift(positions, visual)
    assert shift.tolist() == [[3, 3, 3, 2, 1, 0, 0, 0, 0, 0]]
    # Seen from the query (position 9, moved back by 3 to 6 in the unified layout), every key is
    # where the unified layout puts it: 0, 1 | 2, 2, 2, 2 | 3, 4, 5, 6.
    unified = torch.tensor([0, 1, 2, 2, 2, 2, 3, 4, 5, 6])
    assert (9 - (positions[0] + shift[0])).tolist() == (6 - unified).tolist()


def test_unified_shift_mrope_by_hand() -> None:
    # Qwen layout: two text tokens, a 2 x 3 image at t = 2 (h = 2 + row, w = 2 + col), then text
    # resuming at 2 + max(2, 3) = 5.
    rows, cols = np.divmod(np.arange(6), 3)
    t = [0, 1] + [2] * 6 + [5, 6]
    h = [0, 1] + [2 + int(r) for r in rows] + [5, 6]
    w = [0, 1] + [2 + int(c) for c in cols] + [5, 6]
    positions = torch.tensor([t, h, w])
    visual = torch.tensor([False, False] + [True] * 6 + [False, False])
    shift = unified_key_shift(positions, visual)
    # Later text moves back by 5 - (2 + 1) = 2; image tokens land on (2, 2, 2) in the new layout.
    moved = positions + shift - 2  # absolute unified positions (query moved back by 2 too)
    assert moved[:, 2:8].unique().tolist() == [2]
    assert moved[:, :2].tolist() == [[0, 1]] * 3
    assert moved[:, 8:].tolist() == [[3, 4]] * 3
    assert torch.all(shift[:, 8:] == 0)


def test_unified_shift_rejects_odd_layouts() -> None:
    positions = torch.arange(6)[None]
    with pytest.raises(ValueError, match="no image"):
        unified_key_shift(positions, torch.zeros(6, dtype=torch.bool))
    with pytest.raises(ValueError, match="end of the prompt"):
        unified_key_shift(positions, torch.tensor([False, False, False, True, True, True]))
    with pytest.raises(ValueError, match="contiguous"):
        unified_key_shift(positions, torch.tensor([False, True, False, True, False, False]))
