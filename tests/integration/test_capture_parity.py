"""The captured last-row attention equals eager attention with output_attentions, to 1e-5."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from laser_core import VLM
from laser_core.capture import AttentionRecorder, attach
from laser_core.config import LaserConfig
from laser_core.stages import capture as _capture


def _eager_last_rows(vlm: VLM, inputs: dict) -> torch.Tensor:
    """[batch, layer, head, patch] from a copy of the model running eager attention."""
    eager = type(vlm.model).from_pretrained(vlm.model_id, attn_implementation="eager").eval()
    with torch.inference_mode():
        out = eager(**inputs, output_attentions=True, use_cache=False)
    mask = vlm.adapter.visual_mask(inputs)
    rows = []
    for b in range(mask.shape[0]):
        per_layer = [att[b, :, -1, :][:, mask[b]] for att in out.attentions]  # [head, patch]
        rows.append(torch.stack(per_layer))
    return torch.stack(rows)


@pytest.mark.parametrize(
    "texts",
    [["what is on the left?"], ["what is on the left of the big red ball?", "describe"]],
    ids=["single", "left-padded batch"],
)
def test_capture_matches_eager(vlm: VLM, photo: Image.Image, texts: list[str]) -> None:
    inputs = vlm.adapter.encode(texts, [photo] * len(texts), LaserConfig())
    captured = _capture(vlm, inputs)
    expected = _eager_last_rows(vlm, inputs)
    assert captured.shape == expected.shape
    assert captured.shape[1:3] == (vlm.adapter.n_layers, vlm.adapter.n_heads)
    torch.testing.assert_close(captured, expected.float(), atol=1e-5, rtol=0)
    # Rows are probabilities over all keys: their visual part is positive and sums below 1.
    total = captured.sum(-1)
    assert torch.all(total > 0) and torch.all(total <= 1 + 1e-5)


def test_padding_does_not_change_the_capture(vlm: VLM, photo: Image.Image) -> None:
    """The short prompt's rows are the same alone and left-padded in a batch (mask honoured)."""
    short, long = "a cat?", "what is on the left of the big red ball in the picture?"
    config = LaserConfig()
    alone = _capture(vlm, vlm.adapter.encode([short], [photo], config))[0]
    batched = _capture(vlm, vlm.adapter.encode([long, short], [photo, photo], config))[1]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_hooks_are_removed_even_on_error(vlm: VLM) -> None:
    modules = vlm.adapter.attention_modules()
    hooks_before = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules)
    recorder = AttentionRecorder(torch.zeros(1, 1, dtype=torch.bool))
    with pytest.raises(RuntimeError, match="boom"), attach(modules, recorder):
        assert all(hasattr(m, "_laser_hook") for m in modules)
        raise RuntimeError("boom")
    assert not any(hasattr(m, "_laser_hook") for m in modules)
    hooks_after = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules)
    assert hooks_after == hooks_before
