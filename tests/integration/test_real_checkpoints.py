"""The published checkpoints, end to end. Needs the weights (a download) and, in practice, a GPU.

Run with `LASER_RUN_SLOW=1 python -m pytest tests/integration/test_real_checkpoints.py`.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from laser_core import HUB_MODELS, explain, load_model, run_method


def _scene() -> Image.Image:
    image = Image.new("RGB", (800, 500), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 300, 200, 440), fill=(220, 30, 30))  # a red ball, bottom left
    draw.rectangle((560, 60, 720, 220), fill=(30, 60, 220))  # a blue box, top right
    return image


@pytest.mark.slow
@pytest.mark.parametrize("model_id", HUB_MODELS)
def test_published_checkpoint(model_id: str) -> None:
    vlm = load_model(model_id)
    image = _scene()
    result = explain(vlm, image, "What colour is the ball?")
    assert "red" in result.answer.lower() or "red" in result.baseline_answer.lower()
    assert result.static_layer == (14 if "llava" in model_id else 22)
    if "llava" in model_id:
        assert result.grid == (24, 24)
    assert np.isfinite(result.vaq).all()
    assert run_method(vlm, image, "Is there a blue box?", "vcd").answer
