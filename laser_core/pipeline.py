"""The verbs the app and the benchmarks call: `explain` (LASER, every stage kept) and `run_method`.

explain(vlm, image, question)
  stage 0  capture   prefill (I, q) -> a[q] (+ the vanilla answer, decoded from that prefill)
                     prefill (I, no q), (I, generic q), one batch -> a[none], a[generic]
  stage 1  layer     A_con = relu(a[q] - a[none]); VAQ per layer; l* = argmax
  stage 2  crop      window of fixed size holding the most A_con[l*] mass -> I+
  stage 3  mask      top-k cells of A_con[l*] filled on I, same crop -> I-
  stage 4  decode    (I+, q) and (I-, q) in lockstep; s = z+ + alpha (z+ - z-)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Literal, get_args

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from transformers import BatchFeature

from laser_core.adapters import ImageGeometry
from laser_core.capture import AttentionRecorder, attach
from laser_core.clvs import run_clvs
from laser_core.config import LaserConfig
from laser_core.contrast import diffusion_noise, vat_logits, vcd_logits
from laser_core.crop import Box, crop_box
from laser_core.decode import Decoded, DecodeStep, decode
from laser_core.inputs import check_question, load_image
from laser_core.layers import head_vaq, select_layer, vaq
from laser_core.loading import VLM
from laser_core.maps import all_layer_maps, contrastive_attention, relative_attention
from laser_core.mask import mask_cells, top_cells
from laser_core.result import LaserResult

Method = Literal["vanilla", "vicrop", "vcd", "laser", "laser_no_vat", "laser_static", "clvs"]
METHODS: tuple[str, ...] = get_args(Method)
ImageInput = Image.Image | str


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
    """Fill family defaults (static layer, CLVS lambda); check layer indices against the model."""
    adapter = vlm.adapter
    resolved = replace(
        config,
        static_layer=adapter.static_layer() if config.static_layer is None else config.static_layer,
        clvs_lambda=adapter.clvs_lambda() if config.clvs_lambda is None else config.clvs_lambda,
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


def explain(
    vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None = None
) -> LaserResult:
    """Run LASER end to end and keep every intermediate the app or a paper figure needs.

    Args:
        vlm: From `load_model`.
        image: A PIL image (any mode) or a path.
        question: The question; whitespace is normalised.
        config: Settings; None = the METHOD.md defaults.

    Raises:
        ValueError: unusable image or question, or settings that do not fit the model.
    """
    timings: dict[str, float] = {}
    image, question, config = _prepare(vlm, image, question, config)
    adapter, prompts = vlm.adapter, prompt_texts(question, config)
    with _timed(timings, "capture"):
        query_inputs, geometry = _encode_checked(vlm, [prompts.query], [image], config)
        baseline, a_query = _decode_capturing(vlm, query_inputs, config)
        free_generic = adapter.encode([prompts.free, prompts.generic], [image, image], config)
        a_free, a_generic = _capture(vlm, free_generic)
    with _timed(timings, "layer"):
        a_con = contrastive_attention(a_query, a_free)  # [layer, head, patch]
        layer_scores, top_heads = vaq(a_con, config.k_heads)
        layer = (
            config.force_layer
            if config.force_layer is not None
            else select_layer(layer_scores, config.allowed_layers)
        )
        maps = all_layer_maps(
            a_query, a_free, a_generic, top_heads, geometry.grid, eps=config.relative_eps
        )
    heat = maps["contrastive"][layer].numpy()
    with _timed(timings, "crop"):
        box = _crop(vlm, heat, geometry, image, config)
        crop = image.crop(box)
    with _timed(timings, "counterfactual"):
        cells = top_cells(heat, config.k_patches)
        masked = mask_cells(
            image, geometry.cell_boxes, cells, fill=config.mask_fill, mean_color=adapter.mean_color
        )
        counterfactual = masked.crop(box)
    with _timed(timings, "decode"):
        vat_applied = uses_vat(config, layer)
        decoded = _decode_pair(
            vlm,
            prompts.query,
            crop,
            counterfactual,
            config,
            combine=partial(vat_logits, alpha=config.alpha),
            use_combined=vat_applied,
        )
    return LaserResult(
        question=question,
        model_id=vlm.model_id,
        answer=decoded.answer,
        baseline_answer=baseline.answer,
        layer=layer,
        static_layer=int(config.static_layer or 0),
        vaq=layer_scores.numpy(),
        head_vaq=head_vaq(a_con).numpy(),
        top_heads=top_heads.numpy(),
        attn_query=a_query.numpy(),
        attn_free=a_free.numpy(),
        attn_generic=a_generic.numpy(),
        raw_maps=maps["raw"].numpy(),
        relative_maps=maps["relative"].numpy(),
        contrastive_maps=maps["contrastive"].numpy(),
        grid=geometry.grid,
        cell_boxes=geometry.cell_boxes,
        crop_box=box,
        masked_cells=cells,
        vat_applied=vat_applied,
        steps=decoded.steps,
        image=image,
        crop_image=crop,
        masked_image=masked,
        counterfactual_image=counterfactual,
        timings=timings,
        config=config.to_dict(),
        extras={"baseline_steps": baseline.steps},
    )


def uses_vat(config: LaserConfig, layer: int) -> bool:
    """Whether VAT decides the tokens: always, never, or (adaptive) only when l* is deeper than
    the static layer; easier cases decode directly from the crop."""
    if config.vat_mode == "always":
        return True
    if config.vat_mode == "off":
        return False
    return layer > int(config.static_layer or 0)


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
    image, question, config = _prepare(vlm, image, question, config)
    prompts = prompt_texts(question, config)
    if method in ("vanilla", "vcd"):  # the full image, no crop
        with _timed(timings, "decode"):
            if method == "vcd":
                decoded = _vcd(vlm, prompts.query, image, config)
            else:
                inputs, _ = _encode_checked(vlm, [prompts.query], [image], config)
                decoded = decode(vlm, inputs, config)
        full = (None, None, None, image, decoded.steps, timings, config.to_dict())
        return MethodResult(method, decoded.answer, *full)
    with _timed(timings, "capture"):
        layer, heat, geometry = _crop_map(vlm, image, prompts, method, config)
    with _timed(timings, "crop"):
        box = _crop(vlm, heat, geometry, image, config)
        crop = image.crop(box)
    with _timed(timings, "decode"):
        inputs, _ = _encode_checked(vlm, [prompts.query], [crop], config)
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
    inputs, geometry = _encode_checked(vlm, [prompts.query, other], [image, image], config)
    a_query, a_other = _capture(vlm, inputs)
    if method == "vicrop":  # relative attention at the static layer, heads averaged
        heat = relative_attention(
            a_query[static].mean(0), a_other[static].mean(0), config.relative_eps
        )
        return static, heat.reshape(geometry.grid).numpy(), geometry
    a_con = contrastive_attention(a_query, a_other)
    layer_scores, top_heads = vaq(a_con, config.k_heads)
    if method == "laser_static":
        layer = static
    else:
        layer = (
            config.force_layer
            if config.force_layer is not None
            else select_layer(layer_scores, config.allowed_layers)
        )
    heat = a_con[layer, top_heads[layer]].mean(0).reshape(geometry.grid)
    return layer, heat.numpy(), geometry


def _prepare(
    vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None
) -> tuple[Image.Image, str, LaserConfig]:
    config = resolve_config(vlm, config if config is not None else LaserConfig())
    return load_image(image, min_side=vlm.adapter.patch_size), check_question(question), config


def _encode_checked(
    vlm: VLM, texts: list[str], images: list[Image.Image], config: LaserConfig
) -> tuple[BatchFeature, ImageGeometry]:
    """Encode, refuse prompts that do not fit the context, and check the visual-token count."""
    inputs = vlm.adapter.encode(texts, images, config)
    length = int(inputs["input_ids"].shape[1])
    budget = vlm.adapter.context_length - config.max_new_tokens
    if length > budget:
        raise ValueError(
            f"the prompt is {length} tokens (image included) but this model reads at most "
            f"{budget} before its {config.max_new_tokens}-token answer: shorten the question"
        )
    geometry = vlm.adapter.geometry(images[0], inputs)
    vlm.adapter.check_visual_tokens(inputs, geometry)
    return inputs, geometry


def _capture(vlm: VLM, inputs: BatchFeature) -> Tensor:
    """Prefill only (no cache, logits of the last position only); [batch, layer, head, patch]."""
    recorder = AttentionRecorder(vlm.adapter.visual_mask(inputs))
    with attach(vlm.adapter.attention_modules(), recorder), torch.inference_mode():
        vlm.model(**inputs.to(vlm.device), use_cache=False, logits_to_keep=1)
    return recorder.stacked(vlm.adapter.n_layers)


def _decode_capturing(
    vlm: VLM, inputs: BatchFeature, config: LaserConfig
) -> tuple[Decoded, Tensor]:
    """Greedy vanilla decoding whose prefill also yields the capture: [layer, head, patch]."""
    recorder = AttentionRecorder(vlm.adapter.visual_mask(inputs))
    with attach(vlm.adapter.attention_modules(), recorder):
        decoded = decode(vlm, inputs, replace(config, decoding="greedy"))
    return decoded, recorder.stacked(vlm.adapter.n_layers)[0]


def _decode_pair(
    vlm: VLM,
    text: str,
    positive: Image.Image,
    negative: Image.Image,
    config: LaserConfig,
    **options: Any,
) -> Decoded:
    inputs, _ = _encode_checked(vlm, [text, text], [positive, negative], config)
    return decode(vlm, inputs, config, **options)


def _vcd(vlm: VLM, text: str, image: Image.Image, config: LaserConfig) -> Decoded:
    """VCD: the image and its diffusion-noised copy, in lockstep."""
    inputs, _ = _encode_checked(vlm, [text, text], [image, image], config)
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


def _crop(
    vlm: VLM, heat: np.ndarray, geometry: ImageGeometry, image: Image.Image, config: LaserConfig
) -> Box:
    minimum = max(config.crop_min, vlm.adapter.patch_size)  # never smaller than one patch
    return crop_box(heat, geometry.cell_boxes, image.size, ratio=config.crop_ratio, minimum=minimum)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
