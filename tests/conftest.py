"""Shared pytest setup: offline hub, fixed seeds, few threads, tiny checkpoints, `slow` marker.

Environment variables are set at import, before any test module imports transformers or gradio.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from tiny_models import (  # noqa: E402
    build_tiny_llava,
    build_tiny_qwen2_5_vl,
    build_tiny_qwen2_vl,
)

torch.manual_seed(0)
torch.set_num_threads(2)

TINY_MODEL_IDS = ("llava", "qwen2_vl", "qwen2_5_vl")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked `slow` unless LASER_RUN_SLOW=1."""
    if os.environ.get("LASER_RUN_SLOW") == "1":
        return
    skip_slow = pytest.mark.skip(reason="needs a real checkpoint or a GPU")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def tiny_llava_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a saved tiny LLaVA-1.5 (model + LlavaProcessor); 36 visual tokens per image."""
    return build_tiny_llava(tmp_path_factory.mktemp("tiny_llava"))


@pytest.fixture(scope="session")
def tiny_qwen2_vl_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a saved tiny Qwen2-VL (model + image-only processor)."""
    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny_qwen2_vl"))


@pytest.fixture(scope="session")
def tiny_qwen2_5_vl_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Folder of a saved tiny Qwen2.5-VL (model + image-only processor)."""
    return build_tiny_qwen2_5_vl(tmp_path_factory.mktemp("tiny_qwen2_5_vl"))


@pytest.fixture(params=TINY_MODEL_IDS)
def tiny_model_path(request: pytest.FixtureRequest) -> Path:
    """Each tiny checkpoint folder in turn (ids: llava, qwen2_vl, qwen2_5_vl)."""
    path: Path = request.getfixturevalue(f"tiny_{request.param}_path")
    return path
