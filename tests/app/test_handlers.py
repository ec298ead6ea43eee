"""Handlers and viz wiring on a tiny random LLaVA: shapes, geometry, tables, exports."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from PIL import Image

from laser_core import STAGES, LaserConfig
from ui import export as app_export
from ui import models
from ui.clvs_tab import on_clvs, on_clvs_layer
from ui.compare import COMPARE_METHODS, METHOD_NAMES, on_compare
from ui.events import STAGE_LABELS
from ui.explorer import run_view
from ui.session import make_session
from ui.settings import SETTINGS, config_from_values
from viz import VAT_HEADERS, colormap_lut, display_size, format_token


def test_settings_cover_every_config_field(handlers: ModuleType) -> None:
    names = [s.name for s in SETTINGS]
    assert names == [f.name for f in dataclasses.fields(LaserConfig)]
    assert all(s.help for s in SETTINGS), "every field needs its meaning and range"
    assert {s.kind for s in SETTINGS} >= {"bool", "choice", "int", "float", "layers"}


def test_default_settings_give_the_default_config(handlers: ModuleType) -> None:
    assert config_from_values([s.default for s in SETTINGS]) == LaserConfig()


def test_settings_values_are_coerced(handlers: ModuleType, settings: Any) -> None:
    config = config_from_values(
        settings(allowed_layers="1, 2", k_patches=3.0, force_layer=None, k_heads=2.0, alpha="0.5")
    )
    assert config.allowed_layers == (1, 2) and config.force_layer is None
    assert config.k_patches == 3 and isinstance(config.k_patches, int)
    assert config.k_heads == 2 and config.alpha == 0.5
    assert config_from_values(settings(k_patches=0.1)).k_patches == 0.1
    for bad, words in (
        ({"alpha": -1}, "alpha"),
        ({"k_heads": 2.5}, "whole number"),
        ({"allowed_layers": "a, b"}, "allowed_layers"),
        ({"crop_ratio": "wide"}, "crop_ratio"),
        ({"vat_mode": "x"}, "vat_mode"),
    ):
        with pytest.raises(ValueError, match=words):
            config_from_values(settings(**bad))


def test_run_fills_every_panel(run: Any, picture: Image.Image) -> None:
    session = run.session
    result = session.result
    n_layers = result.n_layers
    assert run.layer["maximum"] == n_layers - 1 and run.layer["value"] == result.layer
    assert [value for _, value in run.heads["choices"]][:3] == ["method", "mean", "top"]
    assert "laser-answer-main" in run.answer and f"l* = {result.layer}" in run.answer
    frames = (run.raw, run.relative, run.contrastive)
    assert all(f.dtype == np.uint8 and f.ndim == 3 for f in frames)
    assert len({f.shape for f in frames}) == 1, "side-by-side panels share one size"
    assert run.vaq.shape == (640, 1024, 3)
    x0, y0, x1, y1 = result.crop_box
    assert run.crop.shape[:2] == (y1 - y0, x1 - x0)  # small image: the crop is shown 1:1
    assert run.crop_boxed.shape[:2] == (picture.height, picture.width)
    assert run.masked.shape == run.crop_boxed.shape
    assert run.counterfactual.shape == run.crop.shape
    # the masked cells are drawn, unless no cell had evidence to mask
    drawn = not np.array_equal(run.masked, run.crop_boxed)
    assert drawn == (len(result.masked_cells) > 0)
    assert run.files is None and "VAT" in run.vat_note


def test_cells_are_drawn_and_an_empty_mask_is_said(run: Any) -> None:
    """Some cells masked: they are drawn. None (an all-zero contrastive map): the
    counterfactual equals the crop, and the status says so."""
    session = run.session
    result = session.result
    full = session.full_result()
    some = dataclasses.replace(full, masked_cells=np.array([[0, 0], [1, 1]], dtype=np.int64))
    none = dataclasses.replace(
        full,
        masked_cells=np.zeros((0, 2), dtype=np.int64),
        masked_image=full.image,
        counterfactual_image=full.crop_image,
    )
    marked = run_view(make_session(some, session.choice, "tiny model", 0.1))
    assert not np.array_equal(marked.masked, marked.crop_boxed)
    assert "none was masked" not in marked.status
    empty = run_view(make_session(none, session.choice, "tiny model", 0.1))
    assert np.array_equal(empty.masked, empty.crop_boxed)
    assert np.array_equal(empty.counterfactual, empty.crop)
    assert "none was masked" in empty.status and f"layer {result.layer}" in empty.status


def test_vat_table_lists_candidates_and_marks_the_choice(run: Any) -> None:
    table, steps = run.vat_table, run.session.result.steps
    assert list(table.columns) == VAT_HEADERS
    assert len(table) == sum(len(step.candidates) for step in steps)
    for index, step in enumerate(steps):
        rows = table[table["step"] == index]
        assert (rows["chosen"] == "✓").sum() == 1
        assert rows[rows["chosen"] == "✓"]["candidate"].item() == format_token(step.token)
        assert rows["z+"].str.strip().str.match(r"^-?\d+\.\d{3}$").all()


def test_overlay_geometry_follows_cell_boxes(run: Any) -> None:
    """A single hot cell paints exactly its footprint in the display image."""
    session = run.session
    canvas, result = session.canvas, session.result
    assert canvas.display_size == display_size(*session.source_size, 768)
    rows, cols = result.grid
    visible = np.argwhere(canvas.visible)
    hot, cold = visible[len(visible) // 2], visible[0]
    heat = np.zeros((rows, cols), dtype=np.float32)
    heat[tuple(hot)] = 1.0
    frame = canvas.render(heat, opacity=1.0, vmin=0.0, vmax=1.0)
    scale = canvas.display_size[0] / session.source_size[0]
    lut = colormap_lut("magma")
    for (row, col), colour in ((hot, lut[255]), (cold, lut[0])):
        x0, y0, x1, y1 = result.cell_boxes[row, col] * scale
        centre = frame[int((y0 + y1) / 2), int((x0 + x1) / 2)]
        assert np.abs(centre.astype(int) - colour).max() <= 1


def test_layer_redraw_never_runs_the_model(
    handlers: ModuleType, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the model ran")

    monkeypatch.setattr(models, "explain_on_device", refuse)
    monkeypatch.setattr(models, "load_runner", refuse)
    n_layers = run.session.result.n_layers
    frames = [
        handlers.on_layer(run.session, layer, "method", 0.55, False) for layer in range(n_layers)
    ]
    assert all(isinstance(f, np.ndarray) for frame in frames for f in frame)
    assert any(not np.array_equal(frames[0][0], other[0]) for other in frames[1:])
    for heads in ("mean", "top", "0", "3", "99"):
        raw, relative, contrastive = handlers.on_layer(run.session, 1, heads, 0.3, True)
        assert raw.shape == relative.shape == contrastive.shape
    skipped = handlers.on_layer(None, 1, "method", 0.5, False)
    assert all(isinstance(s, dict) for s in skipped)


def test_frame_time_on_a_1024_px_image(
    handlers: ModuleType, tiny_model: str, scene: Any, settings: Any
) -> None:
    """Redrawing the three panels of a 1024-px image stays interactive (goal: < 100 ms)."""
    view = handlers.explain_view(scene(1024, 768), "what is red", tiny_model, settings())
    session = view.session
    times = []
    for step in range(12):
        start = time.perf_counter()
        handlers.on_layer(session, step % session.result.n_layers, "method", 0.55, False)
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    print(f"\nslider redraw, 3 panels of a 1024 x 768 image: median {median * 1000:.1f} ms")
    assert median < 0.25  # generous: the goal is < 0.1 s, measured ~30 ms on a shared 2-core CPU


def test_export_writes_a_slide_and_the_json(
    handlers: ModuleType, run: Any, picture: Image.Image
) -> None:
    files, status = handlers.on_export(run.session, 1, "top", 0.5, False)
    assert "Exported" in status
    png, data = (Path(f) for f in files)
    with Image.open(png) as slide:
        assert slide.size == (1920, 1080) and slide.format == "PNG"
    result = json.loads(data.read_text())
    assert result["answer"] == run.session.result.answer
    assert result["image_size"] == [picture.width, picture.height]
    assert len(result["vaq"]) == run.session.result.n_layers
    assert sorted(p.name for p in png.parent.iterdir()) == ["laser-result.json", "laser-slide.png"]


def test_force_layer_refocuses_from_the_captured_attention(
    handlers: ModuleType, tiny_model: str, run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("the full pipeline ran again")

    monkeypatch.setattr(models, "explain", refuse)
    layer = 2 if run.session.result.layer != 2 else 1
    stages: list[tuple[float, str]] = []
    view = handlers.on_force_layer(
        run.session, tiny_model, layer, lambda f, desc="": stages.append((f, desc))
    )
    assert view.status.startswith("Refocused"), view.status
    result, before = view.session.result, run.session.result
    assert view.layer["value"] == layer and result.layer == layer
    assert "forced" in view.answer and result.config["force_layer"] == layer
    assert np.array_equal(result.attn_query, before.attn_query)  # reused, not captured again
    assert result.question == before.question and result.baseline_answer == before.baseline_answer
    assert view.session.source_size == run.session.source_size
    assert view.crop_boxed.shape == run.crop_boxed.shape
    labels = [desc for _, desc in stages if desc.startswith("Stage")]
    assert [label.split(":")[0] for label in labels] == ["Stage 1", "Stage 2", "Stage 3", "Stage 4"]
    assert run.session.result.layer == before.layer, "the old session is left as it was"


def test_run_progress_names_every_stage(
    handlers: ModuleType, tiny_model: str, picture: Image.Image, settings: Any
) -> None:
    seen: list[tuple[float, str]] = []
    view = handlers.on_run(
        lambda f, desc="": seen.append((f, desc)), picture, "what colour", tiny_model, *settings()
    )
    assert view.status.startswith("Done"), view.status
    labels = [desc for _, desc in seen if desc.startswith("Stage")]
    assert labels == [STAGE_LABELS[stage] for stage in STAGES]
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and all(0 <= f <= 1 for f in fractions)


def test_compare_methods_side_by_side(
    handlers: ModuleType, tiny_model: str, picture: Image.Image, settings: Any
) -> None:
    view = on_compare(None, picture, "what colour", tiny_model, *settings(), None)
    assert view.status.startswith("Compared")
    assert list(view.table["method"]) == [METHOD_NAMES[m] for m in COMPARE_METHODS]
    assert len(view.gallery) == len(COMPARE_METHODS)
    assert all(image.ndim == 3 and caption for image, caption in view.gallery)
    assert view.boxes.shape == (picture.height, picture.width, 3)


def test_compare_reuses_the_user_s_own_run_of_the_same_input(
    handlers: ModuleType,
    tiny_model: str,
    picture: Image.Image,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from laser_core.passes import Passes

    reused: list[object] = []
    original = Passes.from_result.__func__

    def spying(cls: type, vlm: Any, result: Any) -> Any:
        reused.append(result)
        return original(cls, vlm, result)

    monkeypatch.setattr(Passes, "from_result", classmethod(spying))
    run = handlers.explain_view(picture, "what colour", tiny_model, settings())
    view = on_compare(None, picture, "what colour", tiny_model, *settings(), run.session)
    assert len(reused) == 1 and reused[0].answer == run.session.result.answer
    laser_row = list(view.table["method"]).index(METHOD_NAMES["laser"])
    assert view.table["answer"][laser_row] == run.session.result.answer
    other = on_compare(None, picture, "what shape", tiny_model, *settings(), run.session)
    assert other.status.startswith("Compared") and len(reused) == 1  # another question: cold


def test_sessions_are_independent(
    handlers: ModuleType, tiny_model: str, scene: Any, settings: Any
) -> None:
    one = handlers.explain_view(scene(300, 200), "what is red", tiny_model, settings()).session
    two = handlers.explain_view(scene(200, 300), "what is blue", tiny_model, settings()).session
    assert one is not two and one.canvas is not two.canvas
    assert one.result.question != two.result.question
    assert (
        handlers.on_layer(one, 0, "method", 0.5, False)[0].shape
        != handlers.on_layer(two, 0, "method", 0.5, False)[0].shape
    )
    assert all(type(model).__name__ == "VLM" for model in models._MODELS.values())


def test_building_the_demo_loads_no_model(
    app_module: ModuleType, handlers: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*_: Any, **__: Any) -> None:
        raise AssertionError("a model was loaded while building the page")

    monkeypatch.setattr(models, "load_model", refuse)
    demo = app_module.build_demo()
    names = {fn.api_name for fn in demo.fns.values()}
    assert {"run", "force_layer", "compare", "export"} <= names


def test_examples_are_read_when_present(handlers: ModuleType, tmp_path: Path) -> None:
    assert handlers.load_examples(tmp_path) == []
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    rows = [
        {"image": "a.png", "question": "what?", "answer": "red", "caption": "a red square"},
        {"image": "a.png", "question": "and?"},
        {"image": "missing.png", "question": "q"},
        {"question": "no image"},
    ]
    (tmp_path / "examples.json").write_text(json.dumps(rows))
    assert handlers.load_examples(tmp_path) == [
        [str(tmp_path / "a.png"), "what?", "red", "a red square"],
        [str(tmp_path / "a.png"), "and?", "", ""],
    ]
    (tmp_path / "examples.json").write_text("{broken")
    assert handlers.load_examples(tmp_path) == []


@pytest.mark.filterwarnings("ignore::UserWarning")  # gr.Warning outside a request
def test_clvs_panels(
    handlers: ModuleType,
    tiny_model: str,
    picture: Image.Image,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    view = on_clvs(None, picture, "what colour", tiny_model, *settings())
    assert view.status.startswith("CLVS done"), view.status
    assert "CLVS answer" in view.answer
    assert view.decay.shape == view.uncertainty.shape == (640, 1024, 3)
    assert view.before.shape == view.after.shape
    monkeypatch.setattr(models, "load_runner", None)  # redraws must not touch the model
    before, after = on_clvs_layer(view.session, 0, 0.8)
    assert before.shape == view.before.shape
    assert all(isinstance(v, dict) for v in on_clvs_layer(None, 0, 0.5))
    bad = on_clvs(None, None, "what", tiny_model, *settings())
    assert bad.status.startswith("⚠️")


def test_old_export_folders_are_pruned(handlers: ModuleType, run: Any) -> None:
    old = Path(tempfile.mkdtemp(prefix=app_export.EXPORT_PREFIX))
    (old / "laser-slide.png").write_bytes(b"x")
    stale = time.time() - 7200
    os.utime(old, (stale, stale))
    files, _ = handlers.on_export(run.session, 0, "method", 0.5, False)
    assert not old.exists() and Path(files[0]).exists()
