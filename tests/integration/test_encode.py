"""`adapter.encode` (images processed once, then joined) equals one plain processor call."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from laser_core import VLM, LaserConfig

CONFIG = LaserConfig()


@pytest.mark.parametrize("layout", ["one", "batch", "two_images"])
def test_encode_equals_the_processor(vlm: VLM, photo: Image.Image, layout: str) -> None:
    crop = photo.crop((10, 10, 120, 100))  # another size, so Qwen pads the batch
    texts, rows = {
        "one": (["what is it?"], [photo]),
        "batch": (["what is on the left?", "x"], [photo, crop]),
        "two_images": (["two images"], [[photo, crop]]),
    }[layout]
    ours = vlm.adapter.encode(texts, rows, CONFIG)
    per_row = [[row] if isinstance(row, Image.Image) else row for row in rows]
    prompts = [vlm.adapter.prompt(t, n_images=len(r)) for t, r in zip(texts, per_row, strict=True)]
    theirs = vlm.processor(
        text=prompts,
        images=[vlm.adapter.model_image(image) for row in per_row for image in row],
        padding=True,
        return_tensors="pt",
        **vlm.adapter.images_kwargs(CONFIG),
    )
    assert sorted(ours) == sorted(theirs)
    for key in theirs:
        assert torch.equal(ours[key], theirs[key]), key
