"""Loaded tiny models (through the library's own `load_model`), shared by the integration tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from laser_core import VLM, load_model


@pytest.fixture(scope="session")
def tiny_vlms(
    tiny_llava_path: Path, tiny_qwen2_vl_path: Path, tiny_qwen2_5_vl_path: Path
) -> dict[str, VLM]:
    return {
        "llava": load_model(tiny_llava_path, device="cpu"),
        "qwen2_vl": load_model(tiny_qwen2_vl_path, device="cpu"),
        "qwen2_5_vl": load_model(tiny_qwen2_5_vl_path, device="cpu"),
    }


@pytest.fixture(params=["llava", "qwen2_vl", "qwen2_5_vl"])
def vlm(request: pytest.FixtureRequest, tiny_vlms: dict[str, VLM]) -> VLM:
    """Each tiny architecture in turn, loaded by `load_model`."""
    return tiny_vlms[request.param]


@pytest.fixture(scope="session")
def photo() -> Image.Image:
    """A non-square random RGB image (wider than tall), fixed seed."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(150, 230, 3), dtype=np.uint8)
    return Image.fromarray(pixels)
