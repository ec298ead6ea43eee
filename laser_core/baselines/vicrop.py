"""ViCrop (Zhang et al., 2025, "MLLMs know where to look"): crop where relative attention points.

map     relative attention at the model's static layer, from the last prompt position:
        heads averaged first, then mean_h a[q] / (mean_h a[generic] + eps)
crop    a window placed on that map
answer  greedy decoding on the crop
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from laser_core.config import LaserConfig
from laser_core.decode import decode
from laser_core.loading import VLM
from laser_core.maps import relative_attention
from laser_core.result import MethodResult
from laser_core.stages import (
    ImageInput,
    capture,
    crop_for,
    encode_checked,
    prepare,
    prompt_texts,
    timed,
)


def vicrop_map(
    a_query: Tensor, a_generic: Tensor, grid: tuple[int, int], *, eps: float = 1e-6
) -> np.ndarray:
    """ViCrop's map of one layer: heads averaged, then the ratio to the generic prompt.

    Args:
        a_query: [head, patch] attention of the last prompt position, with the question.
        a_generic: Same shape, with the generic question.
        grid: (rows, cols) of the visual tokens.
        eps: Guard against 0 / 0 (the authors divide with none).

    Returns:
        [rows, cols] float32.
    """
    heat = relative_attention(a_query.mean(0), a_generic.mean(0), eps)  # [patch]
    return heat.reshape(grid).numpy()


def run_vicrop(
    vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None = None
) -> MethodResult:
    """Answer with ViCrop: relative attention at the static layer places the crop."""
    timings: dict[str, float] = {}
    image, question, config = prepare(vlm, image, question, config)
    prompts = prompt_texts(question, config)
    static = int(config.static_layer or 0)
    with timed(timings, "capture"):
        texts = [prompts.query, prompts.generic]
        inputs, geometry = encode_checked(vlm, texts, [image, image], config)
        a_query, a_generic = capture(vlm, inputs)
        heat = vicrop_map(
            a_query[static], a_generic[static], geometry.grid, eps=config.relative_eps
        )
    with timed(timings, "crop"):
        box = crop_for(vlm, heat, geometry, image, config)
        crop = image.crop(box)
    with timed(timings, "decode"):
        inputs, _ = encode_checked(vlm, [prompts.query], [crop], config)
        decoded = decode(vlm, inputs, config)
    return MethodResult(
        "vicrop", decoded.answer, static, heat, box, crop, decoded.steps, timings, config.to_dict()
    )
