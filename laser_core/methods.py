"""`run_method`: one answer from LASER, an ablation, a baseline or CLVS, under one config.

vanilla       greedy on (I, q)
vicrop        ViCrop (`baselines.vicrop`): relative attention at the static layer -> crop -> answer
vcd           VCD (`baselines.vcd`): (I, q) against (I_noise, q) in lockstep
laser         `explain` (VAQ layer, crop, VAT decoding)
laser_no_vat  contrastive map at l* -> crop -> greedy
laser_static  contrastive map at the static layer -> crop -> greedy
clvs          cross-layer vision smoothing during decoding (`clvs.run_clvs`)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, get_args

from laser_core.baselines import run_vcd, run_vicrop
from laser_core.clvs import run_clvs
from laser_core.config import LaserConfig
from laser_core.decode import decode
from laser_core.layers import select_layer, vaq
from laser_core.loading import VLM
from laser_core.maps import contrastive_attention
from laser_core.pipeline import explain
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

Method = Literal["vanilla", "vicrop", "vcd", "laser", "laser_no_vat", "laser_static", "clvs"]
METHODS: tuple[str, ...] = get_args(Method)
Runner = Callable[[VLM, ImageInput, str, "LaserConfig | None"], MethodResult]


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
    return _RUNNERS[method](vlm, image, question, config)


def run_methods(
    vlm: VLM,
    image: ImageInput,
    question: str,
    methods: Sequence[Method | str],
    config: LaserConfig | None = None,
    *,
    on_method: Callable[[str], None] | None = None,
) -> dict[str, MethodResult]:
    """Several methods on the same image and question, each result as `run_method` gives it.

    The one entry point for callers that compare methods (the app's Compare tab, the
    benchmarks): it is where passes that methods share are shared.

    Args:
        methods: Names from `METHODS`, each at most once; results keep this order.
        on_method: Called with each method's name as it starts (e.g. for progress).

    Raises:
        ValueError: an unknown or repeated method, or bad input (see `explain`).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or len(set(methods)) != len(methods):
        raise ValueError(
            f"methods must be distinct names from {', '.join(METHODS)}, got {list(methods)}"
        )
    results: dict[str, MethodResult] = {}
    for method in methods:
        if on_method is not None:
            on_method(method)
        results[method] = _RUNNERS[method](vlm, image, question, config)
    return results


def _vanilla(
    vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None
) -> MethodResult:
    timings: dict[str, float] = {}
    image, question, config = prepare(vlm, image, question, config)
    with timed(timings, "decode"):
        inputs, _ = encode_checked(vlm, [prompt_texts(question, config).query], [image], config)
        decoded = decode(vlm, inputs, config)
    return MethodResult(
        "vanilla", decoded.answer, None, None, None, image, decoded.steps, timings, config.to_dict()
    )


def _laser(vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None) -> MethodResult:
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


def _laser_crop_only(
    vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None, *, static: bool
) -> MethodResult:
    """LASER's contrastive crop without VAT: at l* (laser_no_vat) or the static layer."""
    timings: dict[str, float] = {}
    image, question, config = prepare(vlm, image, question, config)
    prompts = prompt_texts(question, config)
    with timed(timings, "capture"):
        texts = [prompts.query, prompts.free]
        inputs, (geometry,) = encode_checked(vlm, texts, [image, image], config)
        a_query, a_free = capture(vlm, inputs)
        a_con = contrastive_attention(a_query, a_free)  # [layer, head, patch]
        layer_scores, top_heads = vaq(a_con, config.k_heads)
        if static:
            layer = int(config.static_layer or 0)
        elif config.force_layer is not None:
            layer = config.force_layer
        else:
            layer = select_layer(layer_scores, config.allowed_layers)
        heat = a_con[layer, top_heads[layer]].mean(0).reshape(geometry.grid).numpy()
    with timed(timings, "crop"):
        box = crop_for(vlm, heat, geometry, image, config)
        crop = image.crop(box)
    with timed(timings, "decode"):
        inputs, _ = encode_checked(vlm, [prompts.query], [crop], config)
        decoded = decode(vlm, inputs, config)
    method = "laser_static" if static else "laser_no_vat"
    return MethodResult(
        method, decoded.answer, layer, heat, box, crop, decoded.steps, timings, config.to_dict()
    )


def _laser_no_vat(
    vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None
) -> MethodResult:
    return _laser_crop_only(vlm, image, question, config, static=False)


def _laser_static(
    vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None
) -> MethodResult:
    return _laser_crop_only(vlm, image, question, config, static=True)


def _clvs(vlm: VLM, image: ImageInput, question: str, config: LaserConfig | None) -> MethodResult:
    """CLVS; its trace rides in extras["clvs"]."""
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


_RUNNERS: dict[str, Runner] = {
    "vanilla": _vanilla,
    "vicrop": run_vicrop,
    "vcd": run_vcd,
    "laser": _laser,
    "laser_no_vat": _laser_no_vat,
    "laser_static": _laser_static,
    "clvs": _clvs,
}
