"""`explain` and every method run end to end on the published shapes and give consistent output.

The built models have 4 decoder layers, so the per-checkpoint defaults of METHOD.md (keyed on the
published depth) do not apply to them: they get the generic ones (static layer L // 2, gamma
0.7). The published depths are checked from the unshrunk config files alone.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from published_models import (
    FAMILIES,
    QWEN_FILES,
    SHARED_FILES,
    Checkpoint,
    MethodRuns,
    family_files,
    scene,
)
from transformers import AutoConfig

from laser_core import METHODS, LaserResult, MethodResult
from laser_core.adapters import adapter_class

pytestmark = pytest.mark.published

N_LAYERS = 4  # the shrunk decoders
GRIDS = {"llava": (24, 24), "qwen2_5_vl": (18, 29)}  # of the 800 x 500 scene
VOCAB = {"llava": 32064, "qwen2_5_vl": 152064}  # rows of the embedding and of the LM head
# What the unshrunk published config files must resolve to (METHOD.md).
PUBLISHED_DEFAULTS = {
    "llava": ("LLaVA-1.5-7B", 32, 14, 0.8),
    "qwen2_5_vl": ("Qwen2.5-VL-7B", 28, 14, 0.7),
}
# Published values the shrunk models must keep: (path into config.json, value).
KEPT = {
    "llava": {
        ("image_token_index",): 32000,
        ("pad_token_id",): 32001,
        ("text_config", "vocab_size"): 32064,
        ("vision_config", "image_size"): 336,
        ("vision_config", "patch_size"): 14,
        ("vision_feature_layer",): -2,
        ("vision_feature_select_strategy",): "default",
    },
    "qwen2_5_vl": {
        ("image_token_id",): 151655,
        ("vision_start_token_id",): 151652,
        ("vision_end_token_id",): 151653,
        ("vocab_size",): 152064,
        ("vision_config", "patch_size"): 14,
        ("vision_config", "spatial_merge_size"): 2,
        ("vision_config", "window_size"): 112,
    },
}


def _lookup(config: dict, path: tuple[str, ...]) -> object:
    for key in path:
        config = config[key]
    return config


def test_the_vendored_qwen_files_are_the_shared_ones() -> None:
    """tests/fixtures holds the files of ../shared/checkpoints unchanged (where CI has both)."""
    shared = SHARED_FILES / QWEN_FILES.name
    if not shared.is_dir():
        pytest.skip(f"no shared copy to compare with at {shared.resolve()}")
    names = sorted(path.name for path in shared.iterdir())
    ours = sorted(p.name for p in QWEN_FILES.iterdir() if p.name not in ("README.md", "LICENSE"))
    assert ours == names
    for name in names:
        assert (QWEN_FILES / name).read_bytes() == (shared / name).read_bytes(), name


@pytest.mark.parametrize("family", FAMILIES)
def test_the_published_depth_gets_the_published_defaults(family: str) -> None:
    """From the unshrunk config.json, through the adapter: METHOD.md's static layer and gamma."""
    config = AutoConfig.from_pretrained(family_files(family))
    adapter = adapter_class(family)(SimpleNamespace(config=config), processor=None)
    name, n_layers, static_layer, gamma = PUBLISHED_DEFAULTS[family]
    assert adapter.n_layers == n_layers
    published = adapter.published()
    assert published is not None and published.name == name
    assert (adapter.static_layer(), adapter.clvs_gamma()) == (static_layer, gamma)
    assert adapter.vicrop_base_side == 336  # LLaVA: its CLIP input side; Qwen: the authors' b


def test_the_built_model_keeps_the_published_vocabulary_and_ids(checkpoint: Checkpoint) -> None:
    published = json.loads((checkpoint.files / "config.json").read_text())
    built = json.loads((checkpoint.folder / "config.json").read_text())
    for path, value in KEPT[checkpoint.family].items():
        assert _lookup(published, path) == value == _lookup(built, path), path
    vlm = checkpoint.vlm
    vocab = VOCAB[checkpoint.family]
    assert vlm.model.get_input_embeddings().weight.shape[0] == vocab
    assert vlm.model.get_output_embeddings().weight.shape[0] == vocab
    assert vlm.adapter.image_token_id == vlm.tokenizer.convert_tokens_to_ids(
        vlm.processor.image_token
    )
    assert vlm.adapter.n_layers == N_LAYERS and vlm.adapter.published() is None
    assert vlm.adapter.static_layer() == N_LAYERS // 2


def _check_steps(result: MethodResult | LaserResult, max_new_tokens: int = 3) -> None:
    assert 1 <= len(result.steps) <= max_new_tokens
    for step in result.steps:
        best = step.candidates[0]
        assert step.token_id == best.token_id  # greedy: the best candidate is chosen
        assert math.isfinite(best.score)
        for c in step.candidates:
            assert all(math.isfinite(v) for v in (c.z_plus, c.z_minus, c.vat))
            assert all(0.0 <= p <= 1.0 for p in (c.p_plus, c.p_minus, c.p_score))


def _check_box(box: tuple[int, int, int, int], crop_size: tuple[int, int]) -> None:
    x0, y0, x1, y1 = box
    assert 0 <= x0 < x1 <= 800 and 0 <= y0 < y1 <= 500
    assert crop_size == (x1 - x0, y1 - y0)


def _check_explanation(result: LaserResult, family: str, *, complete: bool = True) -> None:
    """`complete`: an `explain` result; else LASER's own chain (no generic prompt, no vanilla
    answer: those fields are None)."""
    grid = GRIDS[family]
    n_patches = grid[0] * grid[1]
    assert result.grid == grid and result.cell_boxes.shape == (*grid, 4)
    n_heads = result.attn_query.shape[1]
    if not complete:
        assert result.attn_generic is None and result.relative_maps is None
        assert result.baseline_answer is None
    kept = (result.attn_query, result.attn_free, result.attn_generic)
    for attention in kept if complete else kept[:2]:
        assert attention.shape == (N_LAYERS, n_heads, n_patches)
        assert np.isfinite(attention).all() and (attention >= 0).all()
        assert (attention.sum(-1) <= 1 + 1e-4).all()  # a share of one softmax row
    maps_kept = (result.raw_maps, result.contrastive_maps, result.relative_maps)
    for maps in maps_kept if complete else maps_kept[:2]:
        assert maps.shape == (N_LAYERS, *grid) and np.isfinite(maps).all()
    assert result.vaq.shape == (N_LAYERS,) and np.isfinite(result.vaq).all()
    assert result.head_vaq.shape == (N_LAYERS, n_heads)
    assert 0 <= result.layer < N_LAYERS and result.static_layer == N_LAYERS // 2
    _check_box(result.crop_box, result.crop_image.size)
    assert result.counterfactual_image.size == result.crop_image.size
    assert result.masked_image.size == (800, 500)
    _check_steps(result)


@pytest.mark.parametrize("run", ("explain", *METHODS))
def test_every_method_runs_with_consistent_output(method_runs: MethodRuns, run: str) -> None:
    result = method_runs.results[run]
    family = method_runs.family
    grid = GRIDS[family]
    if run == "explain":
        _check_explanation(result, family)
        return
    assert isinstance(result, MethodResult) and result.method == run
    assert isinstance(result.answer, str)
    assert result.config["static_layer"] == N_LAYERS // 2
    _check_steps(result)
    if result.box is None:
        assert result.map is None and result.layer is None
        assert result.input_image.tobytes() == scene().tobytes()
    else:
        assert result.map.shape == grid and np.isfinite(result.map).all()
        assert 0 <= result.layer < N_LAYERS
        _check_box(result.box, result.input_image.size)
    if run == "laser":
        _check_explanation(result.details, family, complete=False)
        assert result.answer == result.details.answer
    if run in ("vicrop", "laser_static"):
        assert result.layer == N_LAYERS // 2
    if run == "vicrop":
        geometries = result.extras["geometries"]
        assert [g.image_size for g in geometries] == [(800, 500), result.input_image.size]
        assert geometries[0].grid == grid
    if run == "clvs":
        clvs = result.extras["clvs"]
        n_steps = len(result.steps)
        assert clvs.grid == grid
        assert clvs.attention_before.shape == (n_steps, N_LAYERS, grid[0] * grid[1])
        assert np.isfinite(clvs.attention_before).all()
        # run_method("clvs") runs CLVS's own passes only: no extra prefill for the decay chart.
        assert clvs.baseline_attention is None


def test_explain_s_capturing_decode_is_vanilla_s(method_runs: MethodRuns) -> None:
    """Capturing attention while decoding the baseline changes neither tokens nor logits."""
    baseline = method_runs.results["explain"].extras["baseline_steps"]
    vanilla = method_runs.results["vanilla"].steps
    assert [s.token_id for s in baseline] == [s.token_id for s in vanilla]
    for ours, plain in zip(baseline, vanilla, strict=True):
        assert [c.token_id for c in ours.candidates] == [c.token_id for c in plain.candidates]
        assert [c.z_plus for c in ours.candidates] == pytest.approx(
            [c.z_plus for c in plain.candidates], abs=1e-4
        )
    assert method_runs.results["laser"].answer == method_runs.results["explain"].answer


def test_run_methods_answers_every_method(method_runs: MethodRuns) -> None:
    results = method_runs.results["run_methods"]
    assert list(results) == list(METHODS)
    for method, result in results.items():
        assert result.method == method
        _check_steps(result)
