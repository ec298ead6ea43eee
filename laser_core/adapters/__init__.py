"""Model-family adapters, chosen by `config.model_type`."""

from __future__ import annotations

from laser_core.adapters.base import ImageGeometry, VLMAdapter, grid_cell_boxes
from laser_core.adapters.llava import LlavaAdapter
from laser_core.adapters.qwen2_vl import Qwen2VLAdapter

ADAPTERS: dict[str, type[VLMAdapter]] = {
    model_type: adapter
    for adapter in (LlavaAdapter, Qwen2VLAdapter)
    for model_type in adapter.model_types
}


def adapter_class(model_type: str) -> type[VLMAdapter]:
    """The adapter serving `model_type`; ValueError naming the supported types otherwise."""
    try:
        return ADAPTERS[model_type]
    except KeyError:
        supported = ", ".join(sorted(ADAPTERS))
        raise ValueError(f"unsupported model type {model_type!r}; supported: {supported}") from None


__all__ = [
    "ADAPTERS",
    "ImageGeometry",
    "LlavaAdapter",
    "Qwen2VLAdapter",
    "VLMAdapter",
    "adapter_class",
    "grid_cell_boxes",
]
