"""`scripts/probe_relations.py`: its probes find what is there and nothing that is not, and its
labels agree with the scene generator's answers."""

from __future__ import annotations

import torch

from laser_core import load_model
from scripts.probe_relations import (
    RELATION_WORDS,
    probe_accuracy,
    probe_table,
    relation_features,
    ridge_r2,
)


def _split(n: int) -> torch.Tensor:
    return torch.arange(n) < int(0.8 * n)


def test_probes_find_a_planted_signal_and_not_noise() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(600, 32, generator=gen)
    train = _split(600)
    planted, _ = probe_accuracy(x, x[:, 3] - 0.5 * x[:, 7] > 0, train)
    noise, n = probe_accuracy(x, torch.rand(600, generator=gen) > 0.5, train)
    assert n == 120
    assert planted > 0.9
    assert 0.35 < noise < 0.65
    y = torch.stack([x[:, 0] + x[:, 1], torch.randn(600, generator=gen)], 1)
    r2_signal, r2_noise = ridge_r2(x, y, train)
    assert r2_signal > 0.95
    assert r2_noise < 0.1


def test_labels_agree_with_the_answers_on_the_embedded_model() -> None:
    vlm = load_model(device="cpu")
    features = relation_features(vlm, 24)
    n_states = vlm.model.config.text_config.num_hidden_layers + 1
    assert features["hidden"].shape == (24, n_states, vlm.model.config.text_config.hidden_size)
    # "yes" exactly when the subject comes first on the axis and the word says "first"
    first = torch.tensor([RELATION_WORDS[k] in ("left of", "above") for k in features["word"]])
    assert torch.equal(features["answer"], features["geometry"] == first)
    assert features["centres"].min() > 0 and features["centres"].max() < 1
    table = probe_table(features)
    assert len(table.splitlines()) == 2 + n_states
