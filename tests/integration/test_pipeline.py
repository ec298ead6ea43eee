"""explain and every run_method end to end on tiny models of the three real architectures."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from laser_core import METHODS, STAGES, VLM, LaserConfig, explain, refocus, run_method
from laser_core.pipeline import uses_vat

QUESTION = "what colour is the ball on the left?"


def test_explain_returns_every_stage(vlm: VLM, photo: Image.Image) -> None:
    result = explain(vlm, photo, QUESTION)
    n_layers, n_heads = vlm.adapter.n_layers, vlm.adapter.n_heads
    rows, cols = result.grid
    assert result.attn_query.shape == (n_layers, n_heads, rows * cols)
    assert result.attn_free.shape == result.attn_generic.shape == result.attn_query.shape
    for maps in (result.raw_maps, result.relative_maps, result.contrastive_maps):
        assert maps.shape == (n_layers, rows, cols) and np.isfinite(maps).all()
    assert result.cell_boxes.shape == (rows, cols, 4)
    assert result.vaq.shape == (n_layers,) and result.top_heads.shape[0] == n_layers
    assert result.layer == int(np.argmax(result.vaq))
    x0, y0, x1, y1 = result.crop_box
    assert 0 <= x0 < x1 <= photo.width and 0 <= y0 < y1 <= photo.height
    assert result.crop_image.size == (x1 - x0, y1 - y0) == result.counterfactual_image.size
    heat = result.contrastive_maps[result.layer]
    assert len(result.masked_cells) == min(max(1, round(0.05 * rows * cols)), int((heat > 0).sum()))
    assert all(heat[r, c] > 0 for r, c in result.masked_cells)
    assert result.steps and all(step.candidates for step in result.steps)
    assert set(result.timings) == {"capture", "layer", "crop", "counterfactual", "decode"}
    assert result.config["static_layer"] == n_layers // 2  # tiny models: the generic default
    assert result.vat_applied == uses_vat(LaserConfig(static_layer=n_layers // 2), result.layer)


def test_vat_table_numbers_are_consistent(vlm: VLM, photo: Image.Image) -> None:
    result = explain(vlm, photo, QUESTION, LaserConfig(vat_mode="always", alpha=0.5))
    assert result.vat_applied
    for step in result.steps:
        best = step.candidates[0]
        assert best.token_id == step.token_id  # greedy on s: the chosen token ranks first
        for cand in step.candidates:
            assert cand.vat == pytest.approx(cand.z_plus - cand.z_minus, abs=1e-4)
            assert cand.score == pytest.approx(cand.z_plus + 0.5 * cand.vat, abs=1e-4)
        scores = [cand.score for cand in step.candidates]
        assert scores == sorted(scores, reverse=True)


def test_vat_off_decodes_the_crop_alone(vlm: VLM, photo: Image.Image) -> None:
    off = explain(vlm, photo, QUESTION, LaserConfig(vat_mode="off"))
    crop_only = run_method(vlm, photo, QUESTION, "laser_no_vat")
    assert not off.vat_applied and off.answer == crop_only.answer
    assert off.crop_box == crop_only.box


def test_baseline_answer_is_the_vanilla_method(vlm: VLM, photo: Image.Image) -> None:
    assert (
        explain(vlm, photo, QUESTION).baseline_answer
        == run_method(vlm, photo, QUESTION, "vanilla").answer
    )


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_and_is_deterministic(vlm: VLM, photo: Image.Image, method: str) -> None:
    first = run_method(vlm, photo, QUESTION, method)
    second = run_method(vlm, photo, QUESTION, method)
    assert first.method == method and isinstance(first.answer, str)
    assert first.answer == second.answer and first.box == second.box
    if method in ("vanilla", "vcd", "clvs"):
        assert first.box is None and first.input_image.size == photo.size
    else:
        assert first.box is not None and first.map is not None
        assert first.input_image.size == (first.box[2] - first.box[0], first.box[3] - first.box[1])
    if method in ("vicrop", "laser_static"):
        assert first.layer == vlm.adapter.n_layers // 2


def test_sampling_is_seeded(vlm: VLM, photo: Image.Image) -> None:
    config = LaserConfig(decoding="sample", temperature=5.0, vat_mode="always", seed=3)
    a = explain(vlm, photo, QUESTION, config)
    b = explain(vlm, photo, QUESTION, config)
    assert [s.token_id for s in a.steps] == [s.token_id for s in b.steps]


def test_force_layer_moves_the_crop_source(vlm: VLM, photo: Image.Image) -> None:
    forced = explain(vlm, photo, QUESTION, LaserConfig(force_layer=0))
    assert forced.layer == 0
    heat = forced.contrastive_maps[0]
    if heat.max() > 0:
        peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
        assert forced.masked_cells[0].tolist() == [int(v) for v in peak]
    else:
        assert len(forced.masked_cells) == 0


def test_layers_out_of_range_are_refused(vlm: VLM, photo: Image.Image) -> None:
    for field in ("force_layer", "static_layer"):
        with pytest.raises(ValueError, match=f"LaserConfig.{field} must be in"):
            explain(vlm, photo, QUESTION, replace(LaserConfig(), **{field: 99}))


def test_unknown_method_lists_the_known_ones(vlm: VLM, photo: Image.Image) -> None:
    with pytest.raises(ValueError, match="vanilla, vicrop, vcd, laser"):
        run_method(vlm, photo, QUESTION, "magic")


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question(vlm: VLM, photo: Image.Image, question: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        explain(vlm, photo, question)


def test_question_longer_than_the_context_is_refused(vlm: VLM, photo: Image.Image) -> None:
    words = vlm.adapter.context_length + 10
    with pytest.raises(ValueError, match="shorten the question"):
        explain(vlm, photo, " ".join(["ball"] * words))


@pytest.mark.parametrize("size", [(5, 5), (1, 4000)])
def test_images_too_small_or_thin(vlm: VLM, size: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="at least"):
        explain(vlm, Image.new("RGB", size), QUESTION)


def test_bad_paths(vlm: VLM, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such image file"):
        explain(vlm, tmp_path / "nope.jpg", QUESTION)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(ValueError, match="cannot read"):
        explain(vlm, broken, QUESTION)


def test_odd_modes_run(tiny_vlms: dict[str, VLM]) -> None:
    vlm = tiny_vlms["llava"]
    for mode in ("RGBA", "L", "P", "CMYK", "I;16"):
        assert isinstance(explain(vlm, Image.new(mode, (60, 40)), QUESTION).answer, str)


def test_save_writes_everything_atomically(
    tiny_vlms: dict[str, VLM], photo: Image.Image, tmp_path: Path
) -> None:
    result = explain(tiny_vlms["qwen2_vl"], photo, QUESTION)
    folder = result.save(tmp_path / "run")
    data = json.loads((folder / "result.json").read_text())
    assert data["answer"] == result.answer and data["layer"] == result.layer
    assert np.array(data["contrastive_maps"]).shape == result.contrastive_maps.shape
    assert data["config"]["k_heads"] == 8 and data["steps"][0]["candidates"]
    with np.load(folder / "attention.npz") as npz:
        np.testing.assert_array_equal(npz["attn_query"], result.attn_query)
    for name in ("image", "crop", "masked", "counterfactual"):
        assert Image.open(folder / f"{name}.png").size[0] > 0
    result.save(folder)  # overwriting works and leaves no staging folders behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # A failure while writing leaves the previous result intact and nothing half-written.
    result.crop_image = None  # type: ignore[assignment]
    with pytest.raises(AttributeError):
        result.save(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert json.loads((folder / "result.json").read_text())["answer"] == result.answer


def test_qwen_crop_is_reencoded_at_its_own_resolution(tiny_vlms: dict[str, VLM]) -> None:
    vlm = tiny_vlms["qwen2_vl"]
    image = Image.fromarray(np.random.default_rng(2).integers(0, 256, (600, 900, 3), np.uint8))
    config = LaserConfig(max_visual_tokens=64)
    result = explain(vlm, image, QUESTION, config)
    crop_inputs = vlm.adapter.encode(["x"], [result.crop_image], config)
    crop_grid = vlm.adapter.geometry(result.crop_image, crop_inputs).grid
    assert crop_grid[0] * crop_grid[1] <= 64
    # The crop (half the side) spends the same token budget on a quarter of the pixels.
    assert crop_grid[0] * crop_grid[1] >= 0.5 * result.grid[0] * result.grid[1]
    assert torch.is_tensor(crop_inputs["pixel_values"])


def test_capture_inside_generate_equals_a_plain_prefill(vlm: VLM, photo: Image.Image) -> None:
    """The vanilla answer reuses the with-question prefill: its capture is the same rows."""
    from laser_core.stages import capture as _capture
    from laser_core.stages import prompt_texts

    config = LaserConfig()
    result = explain(vlm, photo, QUESTION, config)
    text = prompt_texts(QUESTION, config).query
    plain = _capture(vlm, vlm.adapter.encode([text], [photo], config))[0]
    torch.testing.assert_close(torch.from_numpy(result.attn_query), plain, atol=1e-6, rtol=0)


def test_refocus_reuses_the_capture_and_equals_a_forced_run(vlm: VLM, photo: Image.Image) -> None:
    result = explain(vlm, photo, QUESTION)
    layer = (result.layer + 1) % vlm.adapter.n_layers
    again = refocus(vlm, result, layer)
    forced = explain(vlm, photo, QUESTION, LaserConfig(force_layer=layer))
    assert again.layer == layer and again.config["force_layer"] == layer
    assert again.timings["capture"] == 0.0  # no prefill ran
    assert (again.answer, again.crop_box) == (forced.answer, forced.crop_box)
    np.testing.assert_array_equal(again.masked_cells, forced.masked_cells)
    np.testing.assert_allclose(again.contrastive_maps, forced.contrastive_maps, atol=1e-6)
    assert again.baseline_answer == result.baseline_answer
    with pytest.raises(ValueError, match="must be in"):
        refocus(vlm, result, 99)


def test_refocus_refuses_a_result_of_another_model(tiny_vlms: dict[str, VLM], photo: Image.Image):
    result = explain(tiny_vlms["llava"], photo, QUESTION)
    with pytest.raises(ValueError, match="came from"):
        refocus(tiny_vlms["qwen2_vl"], result, 0)


def test_stages_are_announced_in_order(vlm: VLM, photo: Image.Image) -> None:
    seen: list[str] = []
    explain(vlm, photo, QUESTION, on_stage=seen.append)
    assert tuple(seen) == STAGES
