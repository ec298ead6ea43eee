"""Bad input never raises and never shows a traceback: each case gets a readable message."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

from ui import models
from ui.compare import compare_view

WARNING = "⚠️"
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # gr.Warning outside a request


def _status(view: Any) -> str:
    assert isinstance(view.status, str)
    return view.status


@pytest.mark.parametrize(
    ("image", "question", "words"),
    [
        (None, "what colour?", "No image yet"),
        ("picture", "   ", "question is empty"),
        ("picture", None, "question is empty"),
    ],
)
def test_missing_image_or_question(
    handlers: ModuleType,
    tiny_model: str,
    picture: Image.Image,
    settings: Any,
    image: Any,
    question: Any,
    words: str,
) -> None:
    view = handlers.explain_view(
        picture if image == "picture" else image, question, tiny_model, settings()
    )
    assert _status(view).startswith(WARNING) and words in view.status
    assert all(isinstance(value, dict) for value in view[:1] + view[2:])  # gr.skip(): unchanged


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "I;16", "CMYK", "1"])
def test_odd_image_modes(
    handlers: ModuleType, tiny_model: str, scene: Any, settings: Any, mode: str
) -> None:
    image = scene(160, 120, "RGB")
    image = image.convert("I;16") if mode == "I;16" else scene(160, 120, mode)
    view = handlers.explain_view(image, "what colour is it", tiny_model, settings())
    assert _status(view).startswith("Done"), view.status
    assert view.crop_boxed.shape == (120, 160, 3)


def test_huge_image_is_downscaled_to_the_working_size(
    handlers: ModuleType, tiny_model: str, settings: Any
) -> None:
    """The app runs on a copy whose long side is 2048 px, and records both sizes."""
    huge = Image.new("RGB", (6000, 4000), (200, 180, 40))
    view = handlers.explain_view(huge, "what colour is it", tiny_model, settings())
    assert _status(view).startswith("Done"), view.status
    assert "2048 × 1365 px (downscaled from the upload's 6000 × 4000)" in view.status
    for image in (view.crop_boxed, view.crop, view.masked, view.counterfactual, view.raw):
        assert max(image.shape[:2]) <= 1100  # display copies (panels add a title strip)
    assert view.session.source_size == (2048, 1365)  # what the model saw; boxes refer to it
    assert view.session.upload_size == (6000, 4000)
    assert max(view.session.result.image.size) == 1024  # panels keep display copies only
    files, _ = handlers.on_export(view.session, 0, "method", 0.5, False)
    exported = json.loads(Path(files[1]).read_text())
    assert exported["image_size"] == [2048, 1365] and exported["upload_size"] == [6000, 4000]


def test_tiny_and_extreme_images(handlers: ModuleType, tiny_model: str, settings: Any) -> None:
    for size in ((3, 3), (4000, 10)):
        view = handlers.explain_view(Image.new("RGB", size), "what", tiny_model, settings())
        assert _status(view).startswith(WARNING) and "image" in view.status


def test_corrupt_upload_names_the_file(
    handlers: ModuleType, tiny_model: str, settings: Any, uploaded: Any
) -> None:
    payload = uploaded("holiday.jpg", b"\xff\xd8\xff\xe0 this is not really a JPEG" * 10)
    view = handlers.explain_view(payload, "what colour", tiny_model, settings())
    assert _status(view).startswith(WARNING)
    assert "holiday.jpg" in view.status and str(Path(payload["path"]).parent) not in view.status
    empty = handlers.explain_view({"path": None}, "what colour", tiny_model, settings())
    assert "upload again" in _status(empty) or "did not arrive" in empty.status


def test_a_model_that_fails_to_load(
    handlers: ModuleType,
    picture: Image.Image,
    settings: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "config.json").write_text("{not json")
    monkeypatch.setenv("LASER_MODEL", str(tmp_path))
    view = handlers.explain_view(picture, "what colour", str(tmp_path), settings())
    assert _status(view).startswith(WARNING) and "model" in view.status.lower()
    assert "Traceback" not in view.status
    unknown = handlers.explain_view(picture, "what colour", "/etc", settings())
    assert "Unknown model choice" in _status(unknown)


def test_bad_settings(
    handlers: ModuleType, tiny_model: str, picture: Image.Image, settings: Any
) -> None:
    view = handlers.explain_view(picture, "what", tiny_model, settings(crop_ratio=3))
    assert _status(view).startswith(WARNING) and "crop_ratio" in view.status
    view = handlers.explain_view(picture, "what", tiny_model, settings(force_layer=99))
    assert "force_layer" in _status(view)
    view = handlers.on_force_layer(None, tiny_model, 2, None)
    assert _status(view).startswith(WARNING) and "Run LASER first" in view.status


def test_bad_refocus(handlers: ModuleType, tiny_model: str, run: Any) -> None:
    for layer in ("abc", 99, -1):
        view = handlers.on_force_layer(run.session, tiny_model, layer, None)
        assert _status(view).startswith(WARNING), layer
    assert all(isinstance(value, dict) for value in view[:1] + view[2:])
    other = handlers.on_force_layer(run.session, models.EMBEDDED, 1, None)
    assert _status(other).startswith(WARNING) and "model changed" in other.status


def test_unexpected_errors_become_messages(
    handlers: ModuleType,
    tiny_model: str,
    picture: Image.Image,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*_: Any, **__: Any) -> None:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(models, "explain_on_device", boom)
    monkeypatch.setattr(models, "methods_on_device", boom)
    view = handlers.explain_view(picture, "what", tiny_model, settings())
    assert "Something went wrong" in _status(view) and "out of memory" in view.status
    compare = compare_view(picture, "what", tiny_model, settings())
    assert compare.status.startswith(WARNING)


def test_redraw_and_export_without_a_run(handlers: ModuleType, run: Any) -> None:
    assert all(isinstance(v, dict) for v in handlers.on_layer(None, 3, "mean", 0.5, False))
    files, status = handlers.on_export(None, 0, "method", 0.5, False)
    assert files is None and status.startswith(WARNING)
    for layer, opacity in (("x", 0.5), (1, "dark"), (np.nan, 0.5)):
        out = handlers.on_layer(run.session, layer, "method", opacity, False)
        assert all(isinstance(v, dict) for v in out)
    # out-of-range values are clamped rather than refused
    frames = handlers.on_layer(run.session, 999, "method", 7.0, False)
    assert all(isinstance(f, np.ndarray) for f in frames)


def test_compare_with_bad_input(handlers: ModuleType, tiny_model: str, settings: Any) -> None:
    view = compare_view(None, "what", tiny_model, settings())
    assert view.status.startswith(WARNING) and "No image" in view.status


def test_hub_model_without_a_gpu_is_refused(
    handlers: ModuleType, picture: Image.Image, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(models, "_has_accelerator", lambda: False)
    monkeypatch.setattr(models, "load_model", None)  # must not even try
    view = handlers.explain_view(picture, "what", models.HUB_MODELS[0], settings())
    assert _status(view).startswith(WARNING) and "needs a GPU" in view.status
