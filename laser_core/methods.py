"""`run_method` / `run_methods`: answers from LASER, its ablations, the baselines and CLVS.

vanilla       greedy on (I, q)
vicrop        ViCrop (`baselines.vicrop`): relative attention at the static layer -> adaptive
              crop -> answer from the image and the crop together
vcd           VCD (`baselines.vcd`): (I, q) against (I_noise, q) in lockstep
laser         LASER's own chain (`pipeline.laser`): VAQ layer, crop, VAT decoding
laser_no_vat  contrastive map at l* -> crop -> greedy
laser_static  contrastive map at the static layer -> crop -> greedy
clvs          cross-layer vision smoothing during decoding (`clvs.run_clvs`)

Every method runs only its own passes, and `run_methods` shares the passes several methods need
(one `passes.Passes` per input): the image prefix is prefilled once for every capture, a[q] and
the vanilla answer come from one decode, each image goes through the vision tower once, and
laser_no_vat reads LASER's crop. Given an earlier `explain` of the same input (`explained=`),
nothing it computed runs again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Literal, get_args

import numpy as np

from laser_core.baselines import run_vcd, run_vicrop
from laser_core.clvs import run_clvs
from laser_core.config import LaserConfig
from laser_core.decode import decode
from laser_core.layers import select_layer, vaq
from laser_core.loading import VLM
from laser_core.maps import contrastive_attention
from laser_core.passes import Passes
from laser_core.pipeline import laser
from laser_core.result import LaserResult, MethodResult
from laser_core.stages import ImageInput, crop_for, prepare, timed

Method = Literal["vanilla", "vicrop", "vcd", "laser", "laser_no_vat", "laser_static", "clvs"]
METHODS: tuple[str, ...] = get_args(Method)
Runner = Callable[[Passes], MethodResult]


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
    return run_methods(vlm, image, question, [method], config)[method]


def run_methods(
    vlm: VLM,
    image: ImageInput,
    question: str,
    methods: Sequence[Method | str],
    config: LaserConfig | None = None,
    *,
    explained: LaserResult | None = None,
    seeds: Mapping[str, int] | None = None,
    on_method: Callable[[str], None] | None = None,
) -> dict[str, MethodResult]:
    """Several methods on the same image and question, sharing the passes they share.

    Args:
        methods: Names from `METHODS`, each at most once; results keep this order.
        config: Settings; None = the METHOD.md defaults (or those of `explained`).
        explained: An `explain` result of this model, image, question and config, whose captures,
            vanilla answer and LASER answer are reused instead of computed again.
        seeds: A seed per method (`LaserConfig.seed`: its sampler, VCD's noise), e.g. drawn from
            (question, method) ids; no shared pass depends on the seed (captures, crops and the
            vanilla answer are deterministic), so sharing is unchanged. None = `config.seed`.
        on_method: Called with each method's name as it starts (e.g. for progress).

    Raises:
        ValueError: an unknown or repeated method, an `explained` of another input, or bad
            input (see `explain`).
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or len(set(methods)) != len(methods):
        raise ValueError(
            f"methods must be distinct names from {', '.join(METHODS)}, got {list(methods)}"
        )
    if explained is not None:
        passes = _reuse(vlm, image, question, config, explained)
    else:
        passes = Passes(vlm, *prepare(vlm, image, question, config))
    results: dict[str, MethodResult] = {}
    base = passes.config
    for method in methods:
        if on_method is not None:
            on_method(method)
        if method == "laser" and explained is not None:
            results[method] = _from_explained(explained)
            continue
        if seeds is not None and method in seeds:
            passes.config = replace(base, seed=seeds[method])
        results[method] = _RUNNERS[method](passes)
        passes.config = base
    return results


def explains(
    vlm: VLM,
    explained: LaserResult,
    image: ImageInput,
    question: str,
    config: LaserConfig | None = None,
) -> bool:
    """Whether `explained` is an `explain` of this model, image, question and config (so that
    `run_methods(..., explained=explained)` reuses it)."""
    image, question, config = prepare(vlm, image, question, config or _config_of(explained))
    same_image = explained.image is image or (
        explained.image.size == image.size
        and np.array_equal(np.asarray(explained.image), np.asarray(image))
    )
    return (
        explained.model_id == vlm.model_id
        and explained.question == question
        and explained.config == config.to_dict()
        and same_image
    )


def _reuse(
    vlm: VLM,
    image: ImageInput,
    question: str,
    config: LaserConfig | None,
    explained: LaserResult,
) -> Passes:
    """The passes of `explained`, after checking it came from this very input."""
    if not explains(vlm, explained, image, question, config):
        raise ValueError("`explained` comes from another model, image, question or config")
    return Passes.from_result(vlm, explained)


def _config_of(result: LaserResult) -> LaserConfig:
    return LaserConfig.from_dict(result.config)


def _from_explained(result: LaserResult) -> MethodResult:
    return MethodResult(
        "laser",
        result.answer,
        result.layer,
        result.contrastive_maps[result.layer],
        result.crop_box,
        result.crop_image,
        result.steps,
        {**result.timings},
        result.config,
        result,
    )


def _vanilla(passes: Passes) -> MethodResult:
    timings: dict[str, float] = {}
    config = passes.config
    with timed(timings, "decode"):
        if config.decoding == "greedy":
            decoded = passes.vanilla()  # shared with explain's answer card and a[q]
        else:
            inputs, _ = passes.encode([passes.prompts.query], [passes.image])
            decoded = decode(passes.vlm, inputs, config)
    return MethodResult(
        "vanilla",
        decoded.answer,
        None,
        None,
        None,
        passes.image,
        decoded.steps,
        timings,
        config.to_dict(),
    )


def _laser(passes: Passes) -> MethodResult:
    return _from_explained(laser(passes))


def _laser_crop_only(passes: Passes, *, static: bool) -> MethodResult:
    """LASER's contrastive crop without VAT: at l* (laser_no_vat) or the static layer."""
    timings: dict[str, float] = {}
    config = passes.config
    with timed(timings, "capture"):
        a_con = contrastive_attention(passes.capture("query"), passes.capture("free"))
        layer_scores, top_heads = vaq(a_con, config.k_heads)
        if static:
            layer = int(config.static_layer or 0)
        elif config.force_layer is not None:
            layer = config.force_layer
        else:
            layer = select_layer(layer_scores, config.allowed_layers)
        heat = a_con[layer, top_heads[layer]].mean(0).reshape(passes.geometry.grid).numpy()
    with timed(timings, "crop"):
        box = crop_for(passes.vlm, heat, passes.geometry, passes.image, config)
        crop = passes.crop(box)  # at l*, LASER's own crop (and its features, if computed)
    with timed(timings, "decode"):
        inputs, _ = passes.encode([passes.prompts.query], [crop])
        decoded = decode(passes.vlm, inputs, config)
    method = "laser_static" if static else "laser_no_vat"
    return MethodResult(
        method, decoded.answer, layer, heat, box, crop, decoded.steps, timings, config.to_dict()
    )


def _laser_no_vat(passes: Passes) -> MethodResult:
    return _laser_crop_only(passes, static=False)


def _laser_static(passes: Passes) -> MethodResult:
    return _laser_crop_only(passes, static=True)


def _clvs(passes: Passes) -> MethodResult:
    """CLVS; its trace rides in extras["clvs"] (with the plain model's a[q] when another method
    already captured it)."""
    clvs = run_clvs(
        passes.vlm, passes.image, passes.question, passes.config, baseline=False, passes=passes
    )
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
