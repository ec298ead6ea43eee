"""LASER end to end: `explain` runs every stage and keeps what each one produced; `refocus`
reruns stages 2-4 from another layer, reusing the captured attention.

explain(vlm, image, question)
  stage 0  capture         (I, q), (I, no q), (I, generic q): one prefill of the shared image
                           prefix, then each prompt's own text on it (`passes`); the vanilla
                           answer is decoded from the (I, q) prompt
  stage 1  layer           A_con = relu(a[q] - a[none]); VAQ per layer; l* = argmax
  stage 2  crop            window of fixed size holding the most A_con[l*] mass -> I+
  stage 3  counterfactual  top-k cells of A_con[l*] filled on I, same crop -> I-
  stage 4  decode          (I+, q) and (I-, q) in lockstep; s = z+ + alpha (z+ - z-)

`laser(passes)` is LASER's own chain alone (what `run_method("laser")` runs): stage 0 without the
generic prompt and the vanilla answer, which only the app's relative maps and answer card need.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from laser_core.adapters import ImageGeometry
from laser_core.cancel import checked
from laser_core.config import LaserConfig
from laser_core.contrast import vat_logits
from laser_core.crop import Box
from laser_core.decode import DecodeStep, ModelInputs, decode
from laser_core.layers import head_vaq, select_layer, vaq
from laser_core.loading import VLM
from laser_core.maps import all_layer_maps, contrastive_attention
from laser_core.mask import mask_cells, top_cells
from laser_core.passes import Passes
from laser_core.result import LaserResult
from laser_core.stages import (
    ImageInput,
    crop_for,
    encode_checked,
    prepare,
    prompt_texts,
    resolve_config,
    timed,
)

STAGES = ("capture", "layer", "crop", "counterfactual", "decode")
StageCallback = Callable[[str], None]


@dataclass(frozen=True)
class Captured:
    """What stage 0 produced: the attention captures and (for `explain`) the vanilla answer."""

    a_query: Tensor  # [layer, head, patch]
    a_free: Tensor
    a_generic: Tensor | None  # None: not captured (LASER alone does not need it)
    geometry: ImageGeometry
    baseline_answer: str | None  # None: not decoded
    baseline_steps: tuple[DecodeStep, ...]


Encode = Callable[[list[str], list[Image.Image]], tuple[ModelInputs, tuple[ImageGeometry, ...]]]


def explain(
    vlm: VLM,
    image: ImageInput,
    question: str,
    config: LaserConfig | None = None,
    *,
    on_stage: StageCallback | None = None,
) -> LaserResult:
    """Run LASER end to end and keep every intermediate the app or a paper figure needs.

    Args:
        vlm: From `load_model`.
        image: A PIL image (any mode) or a path.
        question: The question; whitespace is normalised.
        config: Settings; None = the METHOD.md defaults.
        on_stage: Called with each stage's name (see `STAGES`) as it starts, e.g. for progress.

    Raises:
        ValueError: unusable image or question, or settings that do not fit the model.
    """
    image, question, config = prepare(vlm, image, question, config)
    return laser(Passes(vlm, image, question, config), complete=True, on_stage=on_stage)


def laser(
    passes: Passes, *, complete: bool = False, on_stage: StageCallback | None = None
) -> LaserResult:
    """LASER on the image and question of `passes`, reusing every pass it already holds.

    Args:
        passes: The shared passes of one input (`passes.Passes`).
        complete: Also capture the generic prompt and decode the vanilla answer (what `explain`
            keeps for the app); otherwise those fields of the result are None.
        on_stage: Called with each stage's name as it starts.
    """
    notify = checked(on_stage or _ignore)  # each stage first checks the stop flag
    timings: dict[str, float] = {}
    notify("capture")
    with timed(timings, "capture"):
        baseline = passes.vanilla() if complete else None  # also a[q], from the same prefill
        captured = Captured(
            passes.capture("query"),
            passes.capture("free"),
            passes.capture("generic") if complete else None,
            passes.geometry,
            baseline.answer if baseline is not None else None,
            baseline.steps if baseline is not None else (),
        )
    extras = {"shared_prefix": passes.shared_prefix}
    return _enhance(
        passes.vlm,
        passes.image,
        passes.question,
        passes.config,
        captured,
        timings,
        notify,
        encode=passes.encode,
        crop_of=passes.crop,
        extras=extras,
    )


def refocus(
    vlm: VLM, result: LaserResult, layer: int, *, on_stage: StageCallback | None = None
) -> LaserResult:
    """Stages 1-4 again with l* forced to `layer`, reusing `result`'s captured attention.

    This is the app's "what if another layer?" button: no prefill runs again, only the crop, the
    mask and the decoding.

    Raises:
        ValueError: `result` came from another model, or `layer` is out of range.
    """
    if result.model_id != vlm.model_id:
        raise ValueError(
            f"this result came from {result.model_id}, not from the loaded {vlm.model_id}"
        )
    config = resolve_config(vlm, replace(LaserConfig.from_dict(result.config), force_layer=layer))
    captured = Captured(
        torch.from_numpy(result.attn_query),
        torch.from_numpy(result.attn_free),
        None if result.attn_generic is None else torch.from_numpy(result.attn_generic),
        ImageGeometry(result.image.size, result.grid, result.cell_boxes, result.grid_region),
        result.baseline_answer,
        tuple(result.extras.get("baseline_steps", ())),
    )
    timings = {"capture": 0.0}
    return _enhance(
        vlm,
        result.image,
        result.question,
        config,
        captured,
        timings,
        checked(on_stage or _ignore),
        encode=partial(encode_checked, vlm, config=config),
        crop_of=result.image.crop,
    )


def uses_vat(config: LaserConfig, layer: int) -> bool:
    """Whether VAT decides the tokens: always, never, or (adaptive) only when l* is deeper than
    the static layer; easier cases decode directly from the crop."""
    if config.vat_mode == "always":
        return True
    if config.vat_mode == "off":
        return False
    return layer > int(config.static_layer or 0)


def _enhance(
    vlm: VLM,
    image: Image.Image,
    question: str,
    config: LaserConfig,
    captured: Captured,
    timings: dict[str, float],
    notify: StageCallback,
    *,
    encode: Encode,
    crop_of: Callable[[Box], Image.Image],
    extras: dict[str, Any] | None = None,
) -> LaserResult:
    """Stages 1-4 from the captures; `encode` builds model inputs, `crop_of` crops the image."""
    geometry = captured.geometry
    notify("layer")
    with timed(timings, "layer"):
        a_con = contrastive_attention(captured.a_query, captured.a_free)  # [layer, head, patch]
        layer_scores, top_heads = vaq(a_con, config.k_heads)
        layer = (
            config.force_layer
            if config.force_layer is not None
            else select_layer(layer_scores, config.allowed_layers)
        )
        maps = all_layer_maps(
            captured.a_query,
            captured.a_free,
            captured.a_generic,
            top_heads,
            geometry.grid,
            eps=config.relative_eps,
        )
    heat = maps["contrastive"][layer].numpy()
    relative = maps.get("relative")
    notify("crop")
    with timed(timings, "crop"):
        box = crop_for(vlm, heat, geometry, image, config)
        crop = crop_of(box)
    notify("counterfactual")
    with timed(timings, "counterfactual"):
        cells = top_cells(heat, config.k_patches, on_image=geometry.on_image)
        masked = mask_cells(
            image,
            geometry.cell_boxes,
            cells,
            fill=config.mask_fill,
            mean_color=vlm.adapter.mean_color,
        )
        counterfactual = masked.crop(box)
    notify("decode")
    with timed(timings, "decode"):
        vat_applied = uses_vat(config, layer)
        text = prompt_texts(question, config).query
        inputs, _ = encode([text, text], [crop, counterfactual])
        combine = partial(vat_logits, alpha=config.alpha)
        decoded = decode(vlm, inputs, config, combine=combine, use_combined=vat_applied)
    return LaserResult(
        question=question,
        model_id=vlm.model_id,
        answer=decoded.answer,
        baseline_answer=captured.baseline_answer,
        layer=layer,
        static_layer=int(config.static_layer or 0),
        vaq=layer_scores.numpy(),
        head_vaq=head_vaq(a_con).numpy(),
        top_heads=top_heads.numpy(),
        attn_query=captured.a_query.numpy(),
        attn_free=captured.a_free.numpy(),
        attn_generic=None if captured.a_generic is None else captured.a_generic.numpy(),
        raw_maps=maps["raw"].numpy(),
        relative_maps=None if relative is None else relative.numpy(),
        contrastive_maps=maps["contrastive"].numpy(),
        grid=geometry.grid,
        cell_boxes=geometry.cell_boxes,
        grid_region=geometry.covered,
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
        extras={"baseline_steps": captured.baseline_steps, **(extras or {})},
    )


def _ignore(stage: str) -> None:
    """The default stage callback."""
