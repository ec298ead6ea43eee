"""`run_method`: one answer from LASER, an ablation, a baseline or CLVS, under one config.

vanilla       greedy on (I, q)
vicrop        relative attention at the static layer (heads averaged) -> crop -> greedy
vcd           (I, q) and (I_noise, q) in lockstep, s = (1 + a) z - a z_noise, plausibility cut
laser         `explain` (VAQ layer, crop, VAT decoding)
laser_no_vat  contrastive map at l* -> crop -> greedy
laser_static  contrastive map at the static layer -> crop -> greedy
clvs          cross-layer vision smoothing during decoding (`clvs.run_clvs`)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, get_args

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from laser_core.adapters import ImageGeometry
from laser_core.clvs import run_clvs
from laser_core.config import LaserConfig
from laser_core.contrast import diffusion_noise, vcd_logits
from laser_core.crop import Box
from laser_core.decode import Decoded, DecodeStep, decode
from laser_core.layers import select_layer, vaq
from laser_core.loading import VLM
from laser_core.maps import contrastive_attention, relative_attention
from laser_core.pipeline import explain
from laser_core.result import LaserResult
from laser_core.stages import (
    ImageInput,
    Prompts,
    capture,
    crop_for,
    encode_checked,
    prepare,
    prompt_texts,
    timed,
)

Method = Literal["vanilla", "vicrop", "vcd", "laser", "laser_no_vat", "laser_static", "clvs"]
METHODS: tuple[str, ...] = get_args(Method)


@dataclass
class MethodResult:
    """The answer of one method and what it used to get there."""

    method: str
    answer: str
    layer: int | None  # the layer whose map placed the crop (None: no crop)
    map: np.ndarray | None  # [rows, cols] that map
    box: Box | None  # the crop (x0, y0, x1, y1) in original pixels
    input_image: Image.Image  # what the answer was decoded from
    steps: tuple[DecodeStep, ...]
    timings: dict[str, float]
    config: dict[str, Any]
    details: LaserResult | None = None  # the full explanation, for "laser"
    extras: dict[str, Any] = field(default_factory=dict)


def run_method(
    vlm: VLM,
    image: ImageInput,
    question: str,
    method: Method | str,
    config: LaserConfig | None = None,
) -> MethodResult:
    """Answer with one method: vanilla, vicrop, vcd, laser, laser_no_vat, laser_static or clvs.

    Raises:
        ValueError: an unknown method, or bad input (see `explain`).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "laser":
        result = explain(vlm, image, question, config)
        return MethodResult(
            "laser",
            result.answer,
            result.layer,
            result.contrastive_maps[result.layer],
            result.crop_box,
            result.crop_image,
            result.steps,
            result.timings,
            result.config,
            result,
        )
    if method == "clvs":  # cross-layer vision smoothing; its trace rides in extras["clvs"]
        clvs = run_clvs(vlm, image, question, config)
        return MethodResult(
            "clvs",
            clvs.answer,
            None,
            None,
            None,
            clvs.image,
            clvs.steps,
            clvs.timings,
            clvs.config,
            extras={"clvs": clvs},
        )
    timings: dict[str, float] = {}
    image, question, config = prepare(vlm, image, question, config)
    prompts = prompt_texts(question, config)
    if method in ("vanilla", "vcd"):  # the full image, no crop
        with timed(timings, "decode"):
            if method == "vcd":
                decoded = _vcd(vlm, prompts.query, image, config)
            else:
                inputs, _ = encode_checked(vlm, [prompts.query], [image], config)
                decoded = decode(vlm, inputs, config)
        full = (None, None, None, image, decoded.steps, timings, config.to_dict())
        return MethodResult(method, decoded.answer, *full)
    with timed(timings, "capture"):
        layer, heat, geometry = _crop_map(vlm, image, prompts, method, config)
    with timed(timings, "crop"):
        box = crop_for(vlm, heat, geometry, image, config)
        crop = image.crop(box)
    with timed(timings, "decode"):
        inputs, _ = encode_checked(vlm, [prompts.query], [crop], config)
        decoded = decode(vlm, inputs, config)
    return MethodResult(
        method, decoded.answer, layer, heat, box, crop, decoded.steps, timings, config.to_dict()
    )


def _crop_map(
    vlm: VLM, image: Image.Image, prompts: Prompts, method: str, config: LaserConfig
) -> tuple[int, np.ndarray, ImageGeometry]:
    """The map that places the crop for vicrop, laser_no_vat and laser_static."""
    static = int(config.static_layer or 0)
    other = prompts.generic if method == "vicrop" else prompts.free
    inputs, geometry = encode_checked(vlm, [prompts.query, other], [image, image], config)
    a_query, a_other = capture(vlm, inputs)
    if method == "vicrop":  # relative attention at the static layer, heads averaged
        heat = relative_attention(
            a_query[static].mean(0), a_other[static].mean(0), config.relative_eps
        )
        return static, heat.reshape(geometry.grid).numpy(), geometry
    a_con = contrastive_attention(a_query, a_other)
    layer_scores, top_heads = vaq(a_con, config.k_heads)
    if method == "laser_static":
        layer = static
    elif config.force_layer is not None:
        layer = config.force_layer
    else:
        layer = select_layer(layer_scores, config.allowed_layers)
    heat = a_con[layer, top_heads[layer]].mean(0).reshape(geometry.grid)
    return layer, heat.numpy(), geometry


def _vcd(vlm: VLM, text: str, image: Image.Image, config: LaserConfig) -> Decoded:
    """VCD: the image and its diffusion-noised copy, in lockstep."""
    inputs, _ = encode_checked(vlm, [text, text], [image, image], config)
    pixels = inputs["pixel_values"]
    half = pixels.shape[0] // 2  # LLaVA: one row per image; Qwen: the patches of both images
    generator = torch.Generator().manual_seed(config.seed)
    pixels[half:] = diffusion_noise(
        pixels[half:], step=config.vcd_noise_step, n_steps=config.vcd_steps, generator=generator
    )
    combine = partial(_vcd_combine, alpha=config.vcd_alpha, beta=config.vcd_beta)
    return decode(vlm, inputs, config, combine=combine)


def _vcd_combine(z: Tensor, z_noise: Tensor, *, alpha: float, beta: float) -> tuple[Tensor, Tensor]:
    return z - z_noise, vcd_logits(z, z_noise, alpha=alpha, beta=beta)
