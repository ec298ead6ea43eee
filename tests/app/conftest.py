"""App test setup: a tiny random LLaVA as the app's model (via LASER_MODEL), and small settings.

The app module is imported only after LASER_MODEL points at the tiny checkpoint, so the model
dropdown offers it. Runs are cached per test session where a test only reads them.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from gradio.utils import get_upload_folder
from PIL import Image

from ui.settings import SETTINGS


@pytest.fixture(scope="session")
def tiny_model(tiny_llava_path: Path) -> Iterator[str]:
    """The tiny LLaVA folder, set as the app's model choice through LASER_MODEL."""
    previous = os.environ.get("LASER_MODEL")
    os.environ["LASER_MODEL"] = str(tiny_llava_path)
    yield str(tiny_llava_path)
    if previous is None:
        os.environ.pop("LASER_MODEL", None)
    else:
        os.environ["LASER_MODEL"] = previous


@pytest.fixture(scope="session")
def handlers(tiny_model: str) -> ModuleType:
    from ui import handlers

    return handlers


@pytest.fixture(scope="session")
def app_module(tiny_model: str) -> ModuleType:
    import app

    return app


@pytest.fixture(scope="session")
def settings(handlers: ModuleType) -> Any:
    """settings(**overrides) -> the settings controls' values: defaults, 3-token answers."""

    def make(**overrides: Any) -> list[Any]:
        values = {s.name: s.default for s in SETTINGS}
        values["max_new_tokens"] = 3
        values.update(overrides)
        return [values[s.name] for s in SETTINGS]

    return make


def _scene(width: int = 640, height: int = 480, mode: str = "RGB") -> Image.Image:
    """A seeded picture with a few flat shapes (compresses well, unlike noise)."""
    rng = np.random.default_rng(0)
    pixels = np.full((height, width, 3), 235, dtype=np.uint8)
    for _ in range(4):
        x, y = rng.integers(0, width - width // 5), rng.integers(0, height - height // 5)
        pixels[y : y + height // 5, x : x + width // 5] = rng.integers(0, 255, 3)
    image = Image.fromarray(pixels)
    if mode == "P":
        return image.convert("P", palette=Image.Palette.ADAPTIVE)
    return image.convert(mode)


@pytest.fixture(scope="session")
def scene() -> Any:
    """scene(width, height, mode) -> a PIL picture of a few flat boxes."""
    return _scene


@pytest.fixture(scope="session")
def picture() -> Image.Image:
    return _scene()


@pytest.fixture(scope="session")
def run(handlers: ModuleType, tiny_model: str, picture: Image.Image, settings: Any) -> Any:
    """One successful run (RunView) on the tiny model, shared by read-only tests."""
    view = handlers.explain_view(picture, "what colour is the box", tiny_model, settings())
    assert view.status.startswith("Done"), view.status
    return view


@pytest.fixture
def uploaded() -> Iterator[Callable[[str, bytes], dict[str, Any]]]:
    """uploaded(name, data) -> the payload of a file as Gradio stores an upload (in its upload
    folder, with `meta`); the files are removed after the test."""
    folders: list[Path] = []

    def make(name: str, data: bytes) -> dict[str, Any]:
        folder = Path(get_upload_folder()) / f"test-{uuid.uuid4().hex}"
        folder.mkdir(parents=True)
        folders.append(folder)
        path = folder / name
        path.write_bytes(data)
        return {"path": str(path), "orig_name": name, "meta": {"_type": "gradio.FileData"}}

    yield make
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
