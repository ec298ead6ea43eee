"""The published checkpoints, end to end. Needs the weights (a download) and, in practice, a GPU.

Run with `LASER_RUN_SLOW=1 python -m pytest tests/integration/test_real_checkpoints.py`.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from laser_core import HUB_MODELS, explain, load_model, run_method

# METHOD.md: 14 for LLaVA-1.5 (7B, 13B) and the 28-layer Qwen2-VL / Qwen2.5-VL models, 22 for
# Qwen2.5-VL-3B (36 layers).
STATIC_LAYER = {
    "llava-hf/llava-1.5-7b-hf": 14,
    "llava-hf/llava-1.5-13b-hf": 14,
    "Qwen/Qwen2-VL-2B-Instruct": 14,
    "Qwen/Qwen2-VL-7B-Instruct": 14,
    "Qwen/Qwen2.5-VL-3B-Instruct": 22,
    "Qwen/Qwen2.5-VL-7B-Instruct": 14,
}


def _scene() -> Image.Image:
    image = Image.new("RGB", (800, 500), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 300, 200, 440), fill=(220, 30, 30))  # a red ball, bottom left
    draw.rectangle((560, 60, 720, 220), fill=(30, 60, 220))  # a blue box, top right
    return image


def test_every_hub_model_has_its_static_layer() -> None:
    assert set(STATIC_LAYER) == set(HUB_MODELS)


@pytest.mark.slow
@pytest.mark.parametrize("model_id", HUB_MODELS)
def test_published_checkpoint(model_id: str) -> None:
    vlm = load_model(model_id)
    published = vlm.adapter.published()
    assert published is not None, f"{model_id} is not recognised as a published checkpoint"
    image = _scene()
    result = explain(vlm, image, "What colour is the ball?")
    assert "red" in result.answer.lower() or "red" in result.baseline_answer.lower()
    assert result.static_layer == STATIC_LAYER[model_id] == published.static_layer
    if "llava" in model_id:
        assert result.grid == (24, 24)
    assert np.isfinite(result.vaq).all()
    assert run_method(vlm, image, "Is there a blue box?", "vcd").answer
