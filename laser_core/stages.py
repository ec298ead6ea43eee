"""Building blocks shared by LASER, its baselines and CLVS: input checks, encoding, capture, timing.

Each function does one step for any supported model; the method modules (`pipeline`, `methods`,
`clvs`) compose them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from transformers import BatchFeature

from laser_core.adapters import ImageGeometry
from laser_core.adapters.base import ImageRow
from laser_core.capture import AttentionRecorder, attach
from laser_core.config import LaserConfig
from laser_core.crop import Box, crop_box
from laser_core.decode import ModelInputs, to_device
from laser_core.inputs import check_question, load_image
from laser_core.loading import VLM

ImageInput = Image.Image | str


@dataclass(frozen=True)
class Prompts:
    query: str  # q + suffix
    free: str  # suffix alone: the same prompt with the question removed
    generic: str  # generic question + suffix


def prompt_texts(question: str, config: LaserConfig) -> Prompts:
    return Prompts(
        question + config.prompt_suffix,
        config.prompt_suffix.strip(),
        config.generic_question + config.prompt_suffix,
    )


def resolve_config(vlm: VLM, config: LaserConfig) -> LaserConfig:
    """Fill per-checkpoint defaults (static layer, CLVS gamma); check layer indices."""
    adapter = vlm.adapter
    resolved = replace(
        config,
        static_layer=adapter.static_layer() if config.static_layer is None else config.static_layer,
        clvs_gamma=adapter.clvs_gamma() if config.clvs_gamma is None else config.clvs_gamma,
    )
    last = adapter.n_layers - 1
    for name in ("static_layer", "force_layer"):
        value = getattr(resolved, name)
        if value is not None and value > last:
            raise ValueError(
                f"LaserConfig.{name} must be in [0, {last}] for this model, got {value}"
            )
    if resolved.allowed_layers is not None and max(resolved.allowed_layers) > last:
        raise ValueError(
            f"LaserConfig.allowed_layers must be in [0, {last}] for this model, "
            f"got {list(resolved.allowed_layers)}"
        )
    return resolved


def prepare(
    vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None
) -> tuple[Image.Image, str, LaserConfig]:
    """Checked RGB image, normalised question and resolved config, or a ValueError."""
    config = resolve_config(vlm, config if config is not None else LaserConfig())
    return load_image(image, min_side=vlm.adapter.patch_size), check_question(question), config


def encode_checked(
    vlm: VLM, texts: Sequence[str], images: Sequence[ImageRow], config: LaserConfig
) -> tuple[BatchFeature, tuple[ImageGeometry, ...]]:
    """Encode, refuse prompts that do not fit the context, and check the visual-token count.

    Returns:
        The inputs and the geometry of each image of the FIRST row (one, or several for a
        multi-image turn); every row must hold as many image tokens as that one.
    """
    inputs = vlm.adapter.encode(texts, images, config)
    return inputs, check_encoded(vlm, inputs, images, config)


def check_encoded(
    vlm: VLM, inputs: BatchFeature, images: Sequence[ImageRow], config: LaserConfig
) -> tuple[ImageGeometry, ...]:
    """`encode_checked`'s checks of inputs already encoded; the first row's image geometries."""
    length = int(inputs["input_ids"].shape[1])
    budget = vlm.adapter.context_length - config.max_new_tokens
    if length > budget:
        raise ValueError(
            f"the prompt is {length} tokens (image included) but this model reads at most "
            f"{budget} before its {config.max_new_tokens}-token answer: shorten the question"
        )
    first = [images[0]] if isinstance(images[0], Image.Image) else list(images[0])
    geometries = tuple(
        vlm.adapter.geometry(image, inputs, index) for index, image in enumerate(first)
    )
    vlm.adapter.check_visual_tokens(inputs, geometries)
    return geometries


def capture(vlm: VLM, inputs: ModelInputs) -> Tensor:
    """Prefill only (no cache, logits of the last position only); [batch, layer, head, patch]."""
    recorder = AttentionRecorder(vlm.adapter.visual_mask(inputs))
    with attach(vlm.adapter.attention_modules(), recorder), torch.inference_mode():
        vlm.model(**to_device(inputs, vlm.device), use_cache=False, logits_to_keep=1)
    return recorder.stacked(vlm.adapter.n_layers)


def crop_for(
    vlm: VLM, heat: np.ndarray, geometry: ImageGeometry, image: Image.Image, config: LaserConfig
) -> Box:
    """The crop box of a map under the config's size rule (never smaller than one patch)."""
    minimum = max(config.crop_min, vlm.adapter.patch_size)
    return crop_box(heat, geometry.cell_boxes, image.size, ratio=config.crop_ratio, minimum=minimum)


@contextmanager
def timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    """Add the block's wall time to `timings[stage]` (seconds)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
