"""CLVS on the three tiny architectures: identity, formulas, stop rule, positions, hooks."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from laser_core import VLM, run_method
from laser_core.capture import AttentionRecorder, attach
from laser_core.clvs import clvs_hooks, make_smoother, run_clvs
from laser_core.clvs.kernels import first_stop_layer, normalised_topk_entropy
from laser_core.clvs.result import cells_in_box
from laser_core.config import LaserConfig
from laser_core.stages import capture as _capture
from laser_core.stages import resolve_config

QUESTION = "what is on the left?"
# Few tokens keep the suite fast; check from layer 1 so two layers (1, 2) of 3 are checked.
BASE = LaserConfig(max_new_tokens=3, clvs_check_from=1)
IDENTITY = replace(BASE, clvs_lambda=1.0, clvs_unified_positions=False)


def _prompt_inputs(vlm: VLM, photo: Image.Image, config: LaserConfig) -> dict:
    return vlm.adapter.encode([QUESTION + config.prompt_suffix], [photo], config)


def _hook_count(vlm: VLM) -> int:
    modules: list[nn.Module] = [vlm.model, vlm.adapter.language_model()]
    modules += [vlm.adapter.language_model().rotary_emb, *vlm.adapter.decoder_layers()]
    modules += vlm.adapter.attention_modules()
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._forward_hooks_with_kwargs)
        for m in modules
    )


def test_identity_settings_decode_like_vanilla(vlm: VLM, photo: Image.Image) -> None:
    """lambda = 1 without unified positions changes nothing: same tokens, same logits."""
    clvs = run_clvs(vlm, photo, QUESTION, IDENTITY, baseline=False)
    vanilla = run_method(vlm, photo, QUESTION, "vanilla", IDENTITY)
    assert clvs.answer == vanilla.answer
    assert [s.token_id for s in clvs.steps] == [s.token_id for s in vanilla.steps]
    for ours, theirs in zip(clvs.steps, vanilla.steps, strict=True):
        assert [c.token_id for c in ours.candidates] == [c.token_id for c in theirs.candidates]
        for a, b in zip(ours.candidates, theirs.candidates, strict=True):
            assert a.z_plus == pytest.approx(b.z_plus, abs=1e-5)
    assert clvs.smoothed[:, 1:].all()  # the rows were recomputed, with the same result


def test_identity_settings_keep_every_logit(vlm: VLM, photo: Image.Image) -> None:
    """A plain prefill with the hooks attached gives the same logits at every position."""
    config = resolve_config(vlm, IDENTITY)
    inputs = _prompt_inputs(vlm, photo, config)
    with torch.inference_mode():
        expected = vlm.model(**inputs, use_cache=False).logits
        smoother = make_smoother(vlm, vlm.adapter.visual_mask(inputs)[0], config)
        with clvs_hooks(vlm, smoother):
            got = vlm.model(**inputs, use_cache=False).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert len(smoother.steps) == 1 and smoother.steps[0].smoothed[1:].all()


def test_smoothing_follows_the_formulas(vlm: VLM, photo: Image.Image) -> None:
    config = replace(BASE, clvs_early_stop=False)
    result = run_clvs(vlm, photo, QUESTION, config, head_steps=3)
    lam, gamma = 0.8, 0.7  # one lambda for every model; tiny models are not LLaVA-1.5
    assert (result.config["clvs_lambda"], result.config["clvs_gamma"]) == (lam, gamma)
    before, after = result.head_attention_before, result.head_attention_after  # [T, L, H, P]
    for step in range(before.shape[0]):
        memory = result.memory[step]  # [L, P]
        np.testing.assert_allclose(memory[0], after[step, 0].max(0), atol=1e-7)
        for layer in range(1, result.n_layers):
            blended = lam * before[step, layer] + (1 - lam) * memory[layer]  # [H, P]
            # Renormalised whole row: text part unchanged, so the total is 1 - a_vis + blended.
            total = 1 - before[step, layer].sum(-1) + blended.sum(-1)  # [H]
            np.testing.assert_allclose(after[step, layer], blended / total[:, None], atol=1e-6)
            assert np.all(after[step, layer].sum(-1) <= 1 + 1e-6)
            if layer + 1 < result.n_layers:
                expected = gamma * memory[layer] + (1 - gamma) * before[step, layer].max(0)
                np.testing.assert_allclose(memory[layer + 1], expected, atol=1e-7)
    np.testing.assert_allclose(result.attention_after[: before.shape[0]], after.mean(2), atol=1e-7)


def test_the_stop_check_unembeds_the_raw_hidden_state(vlm: VLM, photo: Image.Image) -> None:
    """Eq. 8 on the layer's own output times the unembedding matrix, WITHOUT the final norm."""
    config = replace(IDENTITY, clvs_early_stop=False)  # smoothing is the identity here
    result = run_clvs(vlm, photo, QUESTION, config, baseline=False)
    inputs = _prompt_inputs(vlm, photo, resolve_config(vlm, config))
    lm_head, norm = vlm.model.get_output_embeddings(), vlm.adapter.language_model().norm
    layer = 1  # checked, and not the last layer (whose hidden_states entry is already normed)
    with torch.inference_mode():
        hidden = vlm.model(**inputs, use_cache=False, output_hidden_states=True).hidden_states
        raw = hidden[layer + 1][0, -1]  # hidden_states[0] is the embedding output
        plain = float(normalised_topk_entropy(lm_head(raw), config.clvs_top_logits))
        normed = float(normalised_topk_entropy(lm_head(norm(raw)), config.clvs_top_logits))
    assert result.uncertainty[0, layer] == pytest.approx(plain, abs=1e-5)
    assert abs(plain - normed) > 1e-4  # the test can tell the two apart


def test_stop_layer_agrees_with_the_uncertainties(vlm: VLM, photo: Image.Image) -> None:
    unstopped = run_clvs(vlm, photo, QUESTION, replace(BASE, clvs_early_stop=False))
    assert unstopped.stop_layers == (None,) * len(unstopped.steps)
    assert np.isnan(unstopped.uncertainty[:, :1]).all()  # before check_from: not checked
    assert np.isfinite(unstopped.uncertainty[:, 1:]).all()
    assert unstopped.smoothed[:, 1:].all()
    # Layers 0..1 do not depend on the stop, so this delta fires at layer 1 of the first token.
    delta = min(1.0, float(unstopped.uncertainty[0, 1]) + 1e-6)
    result = run_clvs(vlm, photo, QUESTION, replace(BASE, clvs_delta=delta))
    assert result.stop_layer == 1
    for step, stop in enumerate(result.stop_layers):
        assert stop == first_stop_layer(result.uncertainty[step], delta, result.check_from)
        if stop is not None:
            assert np.isnan(result.uncertainty[step, stop + 1 :]).all()  # no check after a stop
            assert result.smoothed[step, 1 : stop + 1].all()
            assert not result.smoothed[step, stop + 1 :].any()
            np.testing.assert_array_equal(
                result.attention_after[step, stop + 1 :], result.attention_before[step, stop + 1 :]
            )
            assert np.isnan(result.memory[step, stop + 1 :]).all()


def test_default_check_starts_after_the_middle_layer(vlm: VLM, photo: Image.Image) -> None:
    result = run_clvs(vlm, photo, QUESTION, LaserConfig(max_new_tokens=2, clvs_early_stop=False))
    n_layers = vlm.adapter.n_layers
    assert result.check_from == n_layers // 2 + 1
    checked = np.isfinite(result.uncertainty)
    assert not checked[:, : result.check_from].any() and checked[:, result.check_from :].all()


def _unified_row_from_the_model(vlm: VLM, inputs: dict) -> torch.Tensor:
    """Layer 0's last row [head, patch] of a forward given unified position ids explicitly."""
    seen: dict[str, torch.Tensor] = {}

    def grab(module: nn.Module, args: tuple, kwargs: dict) -> None:
        seen.setdefault("positions", kwargs.get("position_ids", args[1] if len(args) > 1 else None))

    rotary = vlm.adapter.language_model().rotary_emb
    handle = rotary.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        with torch.inference_mode():
            vlm.model(**inputs, use_cache=False)
    finally:
        handle.remove()
    positions = seen["positions"]
    flat = positions.reshape(-1, positions.shape[-1]).clone()  # [component, seq]
    visual = vlm.adapter.visual_mask(inputs)[0]
    index = torch.nonzero(visual).flatten()
    first, last = int(index[0]), int(index[-1])
    unified = flat.clone()
    unified[:, first : last + 1] = flat[:, first : first + 1]  # one id for the whole image
    unified[:, last + 1 :] -= (flat[:, last + 1] - flat[:, first] - 1)[:, None]  # text after
    recorder = AttentionRecorder(visual[None])
    with attach(vlm.adapter.attention_modules(), recorder), torch.inference_mode():
        vlm.model(**inputs, position_ids=unified.reshape(positions.shape), use_cache=False)
    return recorder.rows[0][0]


def test_unified_positions_change_layer_zero_as_the_model_would(
    vlm: VLM, photo: Image.Image
) -> None:
    config = LaserConfig(max_new_tokens=1)
    on = run_clvs(vlm, photo, QUESTION, config)
    expected = _unified_row_from_the_model(vlm, _prompt_inputs(vlm, photo, config))
    # Re-rotating the cached keys by the position change = rotating at the unified positions.
    torch.testing.assert_close(
        torch.from_numpy(on.head_attention_after[0, 0]), expected, atol=1e-6, rtol=0
    )
    assert np.abs(on.head_attention_after[0, 0] - on.head_attention_before[0, 0]).max() > 1e-5
    assert on.smoothed[0, 0]


def test_without_unified_positions_layer_zero_is_sdpa(vlm: VLM, photo: Image.Image) -> None:
    config = replace(BASE, clvs_unified_positions=False, max_new_tokens=1)
    off = run_clvs(vlm, photo, QUESTION, config)
    captured = _capture(vlm, _prompt_inputs(vlm, photo, config))[0]  # [L, H, P]
    assert not off.smoothed[:, 0].any()
    assert torch.equal(torch.from_numpy(off.head_attention_after[0, 0]), captured[0])
    assert torch.equal(torch.from_numpy(off.head_attention_before[0, 0]), captured[0])
    np.testing.assert_array_equal(off.memory[0, 0], captured[0].max(0).values.numpy())


def test_hooks_are_gone_after_a_run_and_after_an_error(vlm: VLM, photo: Image.Image) -> None:
    run_clvs(vlm, photo, QUESTION, LaserConfig(max_new_tokens=1))  # transformers adds its own
    count = _hook_count(vlm)
    run_clvs(vlm, photo, QUESTION, LaserConfig(max_new_tokens=2))
    assert _hook_count(vlm) == count
    config = resolve_config(vlm, LaserConfig())
    batch = vlm.adapter.encode([QUESTION, QUESTION], [photo, photo], config)
    smoother = make_smoother(vlm, vlm.adapter.visual_mask(batch)[0], config)
    with pytest.raises(ValueError, match="one prompt at a time"):
        with clvs_hooks(vlm, smoother), torch.inference_mode():
            vlm.model(**batch, use_cache=False)
    assert _hook_count(vlm) == count
    assert not any(hasattr(m, "_laser_hook") for m in vlm.adapter.attention_modules())


def test_result_is_complete_and_json_ready(vlm: VLM, photo: Image.Image) -> None:
    result = run_clvs(vlm, photo, QUESTION, BASE)
    n_steps, n_layers = len(result.steps), vlm.adapter.n_layers
    rows, cols = result.grid
    n_patches = rows * cols
    assert isinstance(result.answer, str) and 1 <= n_steps <= BASE.max_new_tokens
    assert result.attention_before.shape == (n_steps, n_layers, n_patches)
    assert result.attention_after.shape == result.attention_before.shape
    assert result.head_attention_before.shape == (1, n_layers, vlm.adapter.n_heads, n_patches)
    assert result.memory.shape == (n_steps, n_layers, n_patches)
    assert result.uncertainty.shape == result.smoothed.shape == (n_steps, n_layers)
    assert result.baseline_attention is not None
    assert result.baseline_attention.shape == (n_layers, n_patches)
    assert result.cell_boxes.shape == (rows, cols, 4)
    # The first token's original layer-0 row is the plain model's (same input, same layer).
    np.testing.assert_allclose(
        result.attention_before[0, 0], result.baseline_attention[0], atol=1e-7
    )
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert data["answer"] == result.answer and data["config"]["clvs_gamma"] == 0.7
    assert len(data["stop_layers"]) == n_steps and len(data["attention_before"]) == n_steps
    whole = result.image_attention()
    assert whole["before"].shape == whole["after"].shape == (n_layers,)
    assert np.all(whole["after"] > 0) and np.all(whole["after"] <= 1 + 1e-6)
    width, height = photo.size
    left = cells_in_box(result.cell_boxes, (0, 0, width / 2, height))
    assert 0 < left.sum() < n_patches
    part = result.image_attention(0, left)
    assert np.all(part["after"] < whole["after"]) and part["baseline"] is not None
