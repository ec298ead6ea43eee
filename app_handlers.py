"""Event handlers of LASER Lens: check the input, call `laser_core`, call the views, return.

`app.py` lays the page out and wires events to the `on_*` functions below. The pieces they call:
`app_settings` (the settings panel <-> `LaserConfig`), `app_models` (the model cache and the
calls that run a model), `app_views` and `app_clvs_views` (results -> panels), `app_export`
(slide and JSON). Per-user data lives in a session kept in `gr.State`; every handler turns bad
input into a message (a `gr.Warning` and the status line), never a traceback.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

import app_models as models
from app_clvs_views import (
    ClvsSession,
    ClvsView,
    clvs_frames,
    clvs_outputs,
    make_clvs_session,
)
from app_export import write_exports
from app_settings import SETTINGS, config_from_values, number
from app_views import (
    COMPARE_METHODS,
    METHOD_NAMES,
    CompareView,
    RunView,
    Session,
    compare_outputs,
    layer_frames,
    make_session,
    run_view,
)
from laser_core import STAGES, LaserConfig, ModelLoadError
from laser_core.inputs import check_question, load_image

LOG = logging.getLogger("laser_lens")
STAGE_LABELS = {  # laser_core.STAGES -> what the progress bar says while the stage runs
    "capture": "Stage 0: capturing attention with and without the question",
    "layer": "Stage 1: scoring every layer (VAQ) and choosing l*",
    "crop": "Stage 2: cropping where the question's attention is (I+)",
    "counterfactual": "Stage 3: masking the attended cells (the counterfactual I−)",
    "decode": "Stage 4: decoding the crop against the counterfactual (VAT)",
}


# --- input and messages -------------------------------------------------------------------------


def read_image(image: Any) -> Image.Image:
    """An RGB image from what the Image component sends (an upload payload), a path or PIL.

    Raises:
        ValueError: no image, or a file that is not a readable image, in plain words.
    """
    if image is None:
        raise ValueError(
            "No image yet: upload one (drag and drop, paste or webcam) or pick an example."
        )
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    name = None
    if isinstance(image, dict):  # gradio FileData payload (the event runs with preprocess=False)
        name, image = image.get("orig_name"), image.get("path")
        if not image:
            raise ValueError("The upload did not arrive: please upload the image again.")
    try:
        return load_image(image)
    except ValueError as error:
        message = str(error)
        if not isinstance(image, Image.Image):
            message = message.replace(str(image), f"“{name or Path(str(image)).name}”")
        raise ValueError(f"This image cannot be used: {message}.") from None


def _inputs(
    image: Any, question: Any, model: Any, settings: Sequence[Any]
) -> tuple[Image.Image, str, str, LaserConfig]:
    pil = read_image(image)
    text = check_question("" if question is None else question)
    config = config_from_values(settings)
    choice = str(model or models.default_model())
    return pil, text, choice, config


def _friendly(error: Exception) -> str:
    """A message for the user; unexpected errors are logged with their traceback."""
    if isinstance(error, (ValueError, ModelLoadError)):
        text = str(error).strip() or type(error).__name__
        return text[0].upper() + text[1:]
    LOG.exception("unexpected error in a LASER Lens handler")
    return f"Something went wrong ({type(error).__name__}: {str(error)[:300]}). Try again."


def _warn(message: str) -> str:
    gr.Warning(message)
    return f"⚠️ {message}"


def _model_label(choice: str) -> str:
    return "embedded toy model" if choice == models.EMBEDDED else choice


# --- progress -----------------------------------------------------------------------------------


def _no_progress(*_: Any, **__: Any) -> None:
    return None


def _progress(progress: Any) -> Callable[..., Any]:
    return _no_progress if progress is None else progress


@dataclass(frozen=True)
class _StageProgress:
    """`on_stage` callback: moves the progress bar from `start` to `end` over `STAGES`, showing
    each stage's label. A plain object (not a closure), so it pickles on ZeroGPU."""

    progress: Callable[..., Any]
    start: float
    end: float

    def __call__(self, stage: str) -> None:
        index = STAGES.index(stage) if stage in STAGES else 0
        fraction = self.start + (self.end - self.start) * index / len(STAGES)
        self.progress(fraction, desc=STAGE_LABELS.get(stage, stage))


# --- LASER: run, refocus, redraw, export ---------------------------------------------------------


def _failed_run(error: Exception) -> RunView:
    """Only the status changes (a warning); every other output is left as it was."""
    skip = gr.skip()
    return RunView(skip, _warn(_friendly(error)), *([skip] * (len(RunView._fields) - 2)))


def explain_view(
    image: Any,
    question: Any,
    model: Any,
    settings: Sequence[Any],
    *,
    progress: Callable[..., Any] = _no_progress,
) -> RunView:
    """Run LASER and draw every panel; on bad input only the status changes."""
    try:
        progress(0.0, desc="Checking the image, the question and the settings")
        pil, text, choice, config = _inputs(image, question, model, settings)
        start = time.perf_counter()
        progress(0.1, desc=f"Loading the {_model_label(choice)} (first run only)")
        models.load_runner(choice)
        on_stage = _StageProgress(progress, 0.2, 0.9)
        result = models.explain_on_device(choice, pil, text, config, on_stage)
        progress(0.9, desc="Drawing the panels")
        elapsed = time.perf_counter() - start
        return run_view(make_session(result, choice, _model_label(choice), elapsed))
    except Exception as error:  # every failure becomes a message, never a traceback
        return _failed_run(error)


def refocus_view(
    session: Session | None,
    model: Any,
    layer: Any,
    *,
    progress: Callable[..., Any] = _no_progress,
) -> RunView:
    """Crop, mask and decode again from `layer`, reusing the session's captured attention."""
    try:
        if session is None:
            raise ValueError("Run LASER first: there is no captured attention to start from yet.")
        choice = str(model or models.default_model())
        if choice != session.choice:
            raise ValueError(
                f"The model changed since the last run (that was the {session.model_label}): "
                "press Run LASER again, then pick a layer."
            )
        layer_index = int(number("layer", layer))
        start = time.perf_counter()
        progress(0.1, desc=f"Loading the {_model_label(choice)} (first run only)")
        models.load_runner(choice)
        on_stage = _StageProgress(progress, 0.2, 0.9)
        result = models.refocus_on_device(choice, session.full_result(), layer_index, on_stage)
        progress(0.9, desc="Drawing the panels")
        elapsed = time.perf_counter() - start
        refocused = make_session(result, choice, session.model_label, elapsed)
        return run_view(refocused, refocused=True)
    except Exception as error:
        return _failed_run(error)


def on_run(progress: Any = gr.Progress(), *values: Any) -> RunView:  # noqa: B008
    """Run event: values = image, question, model, *settings (gradio passes progress first)."""
    image, question, model, *settings = values
    return explain_view(image, question, model, settings, progress=_progress(progress))


def on_force_layer(
    session: Session | None,
    model: Any,
    layer: Any,
    progress: Any = gr.Progress(),  # noqa: B008
) -> RunView:
    """Refocus event: stages 1-4 of the session's run again, from the layer on the slider."""
    return refocus_view(session, model, layer, progress=_progress(progress))


def _api_signature(fn: Callable[..., Any], names: Sequence[str]) -> None:
    """Give a `(progress, *values)` handler named parameters, so the API lists `question`,
    `k_heads`, ... (not param_7) and every one is optional (None = the control's default)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter("progress", kind, default=gr.Progress())]
    parameters += [inspect.Parameter(name, kind, default=None) for name in names]
    fn.__signature__ = inspect.Signature(parameters)


_SETTING_NAMES = [s.name for s in SETTINGS]
_api_signature(on_run, ["image", "question", "model", *_SETTING_NAMES])


def on_layer(
    session: Session | None, layer: Any, heads: Any, opacity: Any, smooth: Any
) -> tuple[Any, Any, Any]:
    """Redraw the three heat maps from the session: never runs the model."""
    if session is None:
        return gr.skip(), gr.skip(), gr.skip()
    try:
        return layer_frames(
            session,
            int(number("layer", layer)),
            str(heads or "method"),
            number("opacity", opacity),
            bool(smooth),
        )
    except Exception as error:
        _warn(_friendly(error))
        return gr.skip(), gr.skip(), gr.skip()


def on_export(
    session: Session | None, layer: Any, heads: Any, opacity: Any, smooth: Any
) -> tuple[Any, str]:
    """Write the slide PNG and the result JSON; returns (file paths, status)."""
    if session is None:
        return None, _warn("Run LASER first: there is nothing to export yet.")
    try:
        files = write_exports(
            session,
            int(number("layer", layer)),
            str(heads or "method"),
            number("opacity", opacity),
            bool(smooth),
        )
        return files, "Exported a 1920 × 1080 slide (PNG) and the full result (JSON)."
    except Exception as error:
        return None, _warn(_friendly(error))


# --- compare methods ----------------------------------------------------------------------------


def compare_view(
    image: Any,
    question: Any,
    model: Any,
    settings: Sequence[Any],
    *,
    progress: Callable[..., Any] = _no_progress,
) -> CompareView:
    """Vanilla, ViCrop, VCD and LASER (and CLVS when available) on the same input."""
    try:
        pil, text, choice, config = _inputs(image, question, model, settings)
        progress(0.0, desc=f"Loading the {_model_label(choice)} (first run only)")
        models.load_runner(choice)
        results = []
        for index, method in enumerate(COMPARE_METHODS):
            progress(index / len(COMPARE_METHODS), desc=f"Running {METHOD_NAMES[method]}")
            start = time.perf_counter()
            result = models.method_on_device(choice, pil, text, method, config)
            results.append((result, time.perf_counter() - start))
        return compare_outputs(pil, results)
    except Exception as error:
        skip = gr.skip()
        return CompareView(_warn(_friendly(error)), skip, skip, skip)


def on_compare(progress: Any = gr.Progress(), *values: Any) -> CompareView:  # noqa: B008
    """Compare event: values = image, question, model, *settings."""
    image, question, model, *settings = values
    return compare_view(image, question, model, settings, progress=_progress(progress))


_api_signature(on_compare, ["image", "question", "model", *_SETTING_NAMES])


# --- CLVS, the second method (its tab is shown when its modules exist) -------------------------


def clvs_view(
    image: Any,
    question: Any,
    model: Any,
    settings: Sequence[Any],
    *,
    progress: Callable[..., Any] = _no_progress,
) -> ClvsView:
    """Run CLVS and draw its panels; on bad input only the status changes."""
    try:
        pil, text, choice, config = _inputs(image, question, model, settings)
        start = time.perf_counter()
        progress(0.1, desc=f"Loading the {_model_label(choice)} (first run only)")
        models.load_runner(choice)
        progress(0.3, desc="CLVS: decoding with cross-layer vision smoothing")
        result = models.clvs_on_device(choice, pil, text, config)
        progress(0.9, desc="Drawing the panels")
        elapsed = time.perf_counter() - start
        return clvs_outputs(make_clvs_session(result, _model_label(choice), elapsed))
    except Exception as error:
        skip = gr.skip()
        return ClvsView(skip, _warn(_friendly(error)), *([skip] * 6))


def on_clvs(progress: Any = gr.Progress(), *values: Any) -> ClvsView:  # noqa: B008
    """CLVS event: values = image, question, model, *settings."""
    image, question, model, *settings = values
    return clvs_view(image, question, model, settings, progress=_progress(progress))


_api_signature(on_clvs, ["image", "question", "model", *_SETTING_NAMES])


def on_clvs_layer(session: ClvsSession | None, layer: Any, opacity: Any) -> tuple[Any, Any]:
    """Redraw the CLVS before/after maps from the session: never runs the model."""
    if session is None:
        return gr.skip(), gr.skip()
    try:
        return clvs_frames(session, number("layer", layer), number("opacity", opacity))
    except Exception as error:
        _warn(_friendly(error))
        return gr.skip(), gr.skip()


def load_examples(folder: Path) -> list[list[str]]:
    """[image path, question, expected answer] rows from folder/examples.json; [] if absent."""
    path = folder / "examples.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    items = data.get("examples", []) if isinstance(data, dict) else data
    rows = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or "image" not in item or "question" not in item:
            continue
        image = folder / str(item["image"])
        if image.is_file():
            rows.append([str(image), str(item["question"]), str(item.get("answer", ""))])
    return rows
