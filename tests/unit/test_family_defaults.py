"""METHOD.md's per-checkpoint defaults, keyed on what identifies a checkpoint (type + depth)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from transformers import LlavaConfig, Qwen2_5_VLConfig, Qwen2VLConfig

from laser_core.adapters import VLMAdapter, adapter_class

CONFIGS = {"llava": LlavaConfig, "qwen2_vl": Qwen2VLConfig, "qwen2_5_vl": Qwen2_5_VLConfig}


def _adapter(model_type: str, n_layers: int) -> VLMAdapter:
    config = CONFIGS[model_type](text_config={"num_hidden_layers": n_layers})
    return adapter_class(model_type)(SimpleNamespace(config=config), processor=None)


@pytest.mark.parametrize(
    ("model_type", "n_layers", "static", "gamma"),
    [
        ("llava", 32, 14, 0.8),  # LLaVA-1.5-7B
        ("llava", 40, 14, 0.8),  # LLaVA-1.5-13B
        ("qwen2_vl", 28, 14, 0.7),  # Qwen2-VL-2B and -7B (both 28 layers)
        ("qwen2_5_vl", 28, 14, 0.7),  # Qwen2.5-VL-7B
        ("qwen2_5_vl", 36, 22, 0.7),  # Qwen2.5-VL-3B (the ViCrop authors' layer)
        ("qwen2_vl", 36, 18, 0.7),  # not a published shape: L // 2, even at 36 layers
        ("qwen2_5_vl", 64, 32, 0.7),  # Qwen2.5-VL-32B: L // 2
        ("llava", 6, 3, 0.7),  # the embedded model is a LLaVA, but not LLaVA-1.5
        ("llava", 28, 14, 0.7),  # "28 or more layers" is not what identifies LLaVA-1.5
    ],
)
def test_static_layer_and_clvs_gamma(model_type: str, n_layers: int, static: int, gamma: float):
    adapter = _adapter(model_type, n_layers)
    assert adapter.static_layer() == static
    assert adapter.clvs_gamma() == gamma


def test_vicrop_base_side_is_the_native_input() -> None:
    llava = adapter_class("llava")(SimpleNamespace(config=LlavaConfig()), processor=None)
    assert llava.vicrop_base_side == 336  # LLaVA-1.5's CLIP input
    assert _adapter("qwen2_5_vl", 28).vicrop_base_side == 336  # the authors' default for Qwen
