"""Shared passes: the prefix-shared captures equal full prefills, each image meets the vision
tower once, and an `explain` result is reused instead of recomputed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
import torch
from PIL import Image

from laser_core import METHODS, VLM, LaserConfig, explain, load_model, run_methods
from laser_core.passes import KINDS, Passes
from laser_core.stages import capture, encode_checked, prepare

QUESTION = "what is on the left?"
CONFIG = LaserConfig(max_new_tokens=3)


def _passes(vlm: VLM, photo: Image.Image) -> Passes:
    return Passes(vlm, *prepare(vlm, photo, QUESTION, CONFIG))


def test_prefix_shared_captures_equal_full_prefills(vlm: VLM, photo: Image.Image) -> None:
    passes = _passes(vlm, photo)
    assert passes.shared_prefix  # these templates put the image before the text
    for kind in KINDS:
        inputs, _ = encode_checked(vlm, [getattr(passes.prompts, kind)], [photo], passes.config)
        full = capture(vlm, inputs)[0]
        torch.testing.assert_close(passes.capture(kind), full, atol=1e-5, rtol=0)


def test_the_vanilla_answer_continues_the_cached_prefix(vlm: VLM, photo: Image.Image) -> None:
    from laser_core.decode import decode

    passes = _passes(vlm, photo)
    decoded = passes.vanilla()
    inputs, _ = encode_checked(vlm, [passes.prompts.query], [photo], passes.config)
    plain = decode(vlm, inputs, passes.config)
    assert decoded.token_ids == plain.token_ids
    for ours, theirs in zip(decoded.steps, plain.steps, strict=True):
        assert ours.candidates[0].z_plus == pytest.approx(theirs.candidates[0].z_plus, abs=1e-4)
    full = capture(vlm, inputs)[0]
    torch.testing.assert_close(passes.capture("query"), full, atol=1e-5, rtol=0)


def test_the_embedded_model_asks_before_the_image_and_shares_nothing() -> None:
    vlm = load_model()
    image = Image.new("RGB", (448, 448), (200, 200, 200))
    passes = Passes(vlm, *prepare(vlm, image, "what colour is the circle?", CONFIG))
    assert not passes.shared_prefix
    inputs, _ = encode_checked(vlm, [passes.prompts.free], [image], passes.config)
    torch.testing.assert_close(passes.capture("free"), capture(vlm, inputs)[0], atol=1e-6, rtol=0)


def _count_tower(vlm: VLM, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many images each vision-tower call encodes."""
    calls: list[int] = []
    original = vlm.adapter.image_features

    def counting(inputs: Any, indices: Sequence[int]) -> Any:
        calls.append(len(indices))
        return original(inputs, indices)

    monkeypatch.setattr(vlm.adapter, "image_features", counting)
    return calls


def test_every_image_meets_the_vision_tower_once(
    vlm: VLM, photo: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_tower(vlm, monkeypatch)
    results = run_methods(vlm, photo, QUESTION, METHODS, CONFIG)
    crops = {results[m].box for m in ("vicrop", "laser", "laser_no_vat", "laser_static")}
    assert results["laser_no_vat"].box == results["laser"].box
    # The image, each distinct crop, LASER's counterfactual, VCD's noised copy: once each.
    assert sum(calls) == 1 + len(crops) + 1 + 1


def test_an_explain_result_is_reused(
    vlm: VLM, photo: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    explained = explain(vlm, photo, QUESTION, CONFIG)
    calls = _count_tower(vlm, monkeypatch)
    results = run_methods(vlm, photo, QUESTION, ["vanilla", "laser", "vicrop"], explained=explained)
    assert results["vanilla"].answer == explained.baseline_answer
    assert results["laser"].details is explained
    # Reused: only ViCrop's answer ran the tower (the image and its crop), no capture did.
    assert calls == [2]
    fresh = run_methods(vlm, photo, QUESTION, ["vicrop"], CONFIG)["vicrop"]
    assert (results["vicrop"].answer, results["vicrop"].box) == (fresh.answer, fresh.box)


def test_an_explain_result_of_another_input_is_refused(vlm: VLM, photo: Image.Image) -> None:
    explained = explain(vlm, photo, QUESTION, CONFIG)
    with pytest.raises(ValueError, match="another model, image, question or config"):
        run_methods(vlm, photo, "what is on the right?", ["vanilla"], explained=explained)
    with pytest.raises(ValueError, match="another model, image, question or config"):
        run_methods(vlm, photo.rotate(90), QUESTION, ["vanilla"], explained=explained)


def test_laser_alone_runs_only_its_own_passes(vlm: VLM, photo: Image.Image) -> None:
    result = run_methods(vlm, photo, QUESTION, ["laser"], CONFIG)["laser"]
    details = result.details
    assert details is not None
    assert details.baseline_answer is None and details.attn_generic is None
    assert details.relative_maps is None and details.extras["shared_prefix"]
    full = explain(vlm, photo, QUESTION, CONFIG)
    assert (result.answer, result.box, result.layer) == (full.answer, full.crop_box, full.layer)
