"""The method's pure pieces on hand-computable inputs (METHOD.md stages 1-4)."""

from __future__ import annotations

import math

import pytest
import torch

from laser_core import (
    contrastive_attention,
    relative_attention,
    select_layer,
    vaq,
    vat_logits,
    vcd_logits,
)
from laser_core.baselines.vcd import diffusion_noise
from laser_core.maps import all_layer_maps, layer_maps


def test_contrastive_keeps_only_what_the_question_adds() -> None:
    a_query = torch.tensor([[[0.5, 0.1, 0.2, 0.2]]])
    a_free = torch.tensor([[[0.2, 0.3, 0.2, 0.1]]])
    expected = torch.tensor([[[0.3, 0.0, 0.0, 0.1]]])
    torch.testing.assert_close(contrastive_attention(a_query, a_free), expected)


def test_contrastive_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        contrastive_attention(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))


def test_vaq_of_a_peaked_map_picks_its_layer_and_head() -> None:
    a_con = torch.zeros(3, 4, 4)  # [layer, head, patch]
    a_con[1, 2, 0] = 0.8  # one head of layer 1 moved strongly onto one patch
    a_con[2, :, :] = 0.05  # layer 2: every head moved a little, spread out
    layer_scores, top_heads = vaq(a_con, k_heads=1)
    assert top_heads[1, 0] == 2
    torch.testing.assert_close(layer_scores, torch.tensor([0.0, 0.8, 0.1]))
    assert select_layer(layer_scores) == 1


def test_vaq_averages_the_top_k_heads() -> None:
    a_con = torch.zeros(1, 3, 2)
    a_con[0, 0] = torch.tensor([3.0, 4.0])  # norm 5
    a_con[0, 1] = torch.tensor([0.0, 1.0])  # norm 1
    a_con[0, 2] = torch.tensor([6.0, 8.0])  # norm 10
    layer_scores, top_heads = vaq(a_con, k_heads=2)
    assert top_heads.tolist() == [[2, 0]]
    assert layer_scores.item() == pytest.approx(7.5)


def test_k_larger_than_head_count_is_capped() -> None:
    a_con = torch.rand(2, 3, 5)
    layer_scores, top_heads = vaq(a_con, k_heads=8)
    assert top_heads.shape == (2, 3)
    torch.testing.assert_close(layer_scores, torch.linalg.vector_norm(a_con, dim=-1).mean(1))


def test_all_zero_contrast_gives_zero_scores_and_the_first_layer() -> None:
    layer_scores, top_heads = vaq(torch.zeros(4, 2, 9), k_heads=2)
    assert torch.all(layer_scores == 0)
    assert top_heads.tolist() == [[0, 1]] * 4  # ties broken by the lower head index
    assert select_layer(layer_scores) == 0


def test_select_layer_ties_and_allowed_layers() -> None:
    scores = torch.tensor([0.1, 0.9, 0.9, 0.95])
    assert select_layer(scores[:3]) == 1  # tie: the shallower layer
    assert select_layer(scores, allowed=[0, 2]) == 2
    with pytest.raises(ValueError, match="outside"):
        select_layer(scores, allowed=[7])
    with pytest.raises(ValueError, match="empty"):
        select_layer(scores, allowed=[])


def test_relative_attention_divides_by_the_generic_baseline() -> None:
    out = relative_attention(torch.tensor([0.2, 0.2]), torch.tensor([0.1, 0.4]), eps=0.0)
    torch.testing.assert_close(out, torch.tensor([2.0, 0.5]))


def test_layer_maps_of_the_app_match_the_method_definitions() -> None:
    torch.manual_seed(0)
    a_q, a_f, a_g = (torch.rand(3, 4, 6) for _ in range(3))
    _, top_heads = vaq(contrastive_attention(a_q, a_f), k_heads=2)
    maps = all_layer_maps(a_q, a_f, a_g, top_heads, (2, 3))
    assert maps["raw"].shape == (3, 2, 3)
    torch.testing.assert_close(maps["raw"][1], a_q[1].mean(0).reshape(2, 3))
    torch.testing.assert_close(
        maps["relative"][1], (a_q[1].mean(0) / (a_g[1].mean(0) + 1e-6)).reshape(2, 3)
    )
    con = torch.relu(a_q[1] - a_f[1])[top_heads[1]].mean(0).reshape(2, 3)
    torch.testing.assert_close(maps["contrastive"][1], con)
    top = layer_maps(a_q, a_f, a_g, (2, 3), layer=1, heads="top", top_heads=top_heads)
    torch.testing.assert_close(top["contrastive"], con)
    one = layer_maps(a_q, a_f, a_g, (2, 3), layer=2, heads=3, top_heads=top_heads)
    torch.testing.assert_close(one["raw"], a_q[2, 3].reshape(2, 3))
    with pytest.raises(ValueError, match="head indices"):
        layer_maps(a_q, a_f, a_g, (2, 3), layer=0, heads=4, top_heads=top_heads)


def test_vat_promotes_tokens_that_lose_logit_without_the_evidence() -> None:
    z_plus = torch.tensor([2.0, 1.9, 0.0])
    z_minus = torch.tensor([2.0, 0.5, 0.0])  # token 1 depended on the masked evidence
    vat, s = vat_logits(z_plus, z_minus, alpha=1.0)
    torch.testing.assert_close(vat, torch.tensor([0.0, 1.4, 0.0]))
    torch.testing.assert_close(s, torch.tensor([2.0, 3.3, 0.0]))
    assert int(torch.argmax(z_plus)) == 0 and int(torch.argmax(s)) == 1
    _, s0 = vat_logits(z_plus, z_minus, alpha=0.0)
    torch.testing.assert_close(s0, z_plus)


def test_vcd_contrast_and_plausibility_cut() -> None:
    z = torch.tensor([2.0, 1.0, -5.0])
    z_noise = torch.tensor([2.0, 0.0, -9.0])
    s = vcd_logits(z, z_noise, alpha=1.0, beta=0.1)
    assert s[0] == pytest.approx(2.0) and s[1] == pytest.approx(2.0)
    assert s[2] == float("-inf")  # p(z) of token 2 is far below 0.1 * p_max, however it contrasts
    s_all = vcd_logits(z, z_noise, alpha=1.0, beta=0.0)
    assert s_all[2] == pytest.approx(-1.0)


def test_diffusion_noise_at_step_500_follows_the_schedule() -> None:
    betas = [
        1 / (1 + math.exp(-x)) * (5e-3 - 1e-5) + 1e-5
        for x in torch.linspace(-6, 6, 1000, dtype=torch.float64).tolist()
    ]
    alpha_bar = math.prod(1 - b for b in betas[:501])
    pixels = torch.ones(200_000)
    noisy = diffusion_noise(
        pixels, step=500, n_steps=1000, generator=torch.Generator().manual_seed(0)
    )
    assert noisy.mean().item() == pytest.approx(math.sqrt(alpha_bar), abs=0.01)
    assert noisy.std().item() == pytest.approx(math.sqrt(1 - alpha_bar), abs=0.01)
