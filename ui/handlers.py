"""The Explain tab's events: run LASER, refocus on another layer, redraw, export; the examples.

Each handler checks its input, calls `laser_core` through `ui.models` (holding the model slot,
so a run stops when its user leaves or presses Stop: `ui.runs`), turns the result into the tab's
outputs with `ui.explorer` and returns them; any failure becomes a message in the status line
and a pop-up (`ui.events`), never a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from laser_core.cancel import Cancelled
from ui import models
from ui.events import (
    StageProgress,
    api_signature,
    friendly,
    model_label,
    no_progress,
    progress_of,
    read_inputs,
    warn,
    whole,
)
from ui.explorer import RunView, layer_frames, run_view
from ui.export import write_exports
from ui.limits import hosting_limits
from ui.runs import STOPPED, model_turn
from ui.session import Session, make_session
from ui.settings import number

NO_RUN = (
    "Run LASER first: there is no run in this session to start from (runs are kept "
    "{minutes} minutes)."
)


def _failed_run(error: Exception) -> RunView:
    """Only the status changes (a warning); every other output is left as it was."""
    skip = gr.skip()
    status = STOPPED if isinstance(error, Cancelled) else warn(friendly(error))
    return RunView(skip, status, *([skip] * (len(RunView._fields) - 2)))


def no_run_message() -> str:
    """What a refocus, a redraw or an export says without a kept run (none yet, or expired)."""
    return NO_RUN.format(minutes=f"{hosting_limits().session_ttl_s / 60:g}")


def explain_view(
    image: Any,
    question: Any,
    model: Any,
    settings: Sequence[Any],
    *,
    progress: Callable[..., Any] = no_progress,
) -> RunView:
    """Run LASER and draw every panel; on bad input only the status changes."""
    try:
        progress(0.0, desc="Checking the image, the question and the settings")
        inputs = read_inputs(image, question, model, settings)
        choice = inputs.choice
        start = time.perf_counter()
        with model_turn():
            progress(0.1, desc=f"Loading the {model_label(choice)} (first run only)")
            models.load_runner(choice)
            on_stage = StageProgress(progress, 0.2, 0.9)
            result = models.explain_on_device(
                choice, inputs.image, inputs.question, inputs.config, on_stage
            )
        progress(0.9, desc="Drawing the panels")
        elapsed = time.perf_counter() - start
        session = make_session(
            result, choice, model_label(choice), elapsed, upload_size=inputs.intake.upload_size
        )
        return run_view(session)
    except Exception as error:  # every failure becomes a message, never a traceback
        return _failed_run(error)


def refocus_view(
    session: Session | None,
    model: Any,
    layer: Any,
    *,
    progress: Callable[..., Any] = no_progress,
) -> RunView:
    """Crop, mask and decode again from `layer`, reusing the session's captured attention."""
    try:
        if session is None:
            raise ValueError(no_run_message())
        choice = str(model or models.default_model())
        if choice != session.choice:
            raise ValueError(
                f"The model changed since the last run (that was the {session.model_label}): "
                "press Run LASER again, then pick a layer."
            )
        layer_index = whole("layer", layer)
        start = time.perf_counter()
        with model_turn():
            progress(0.1, desc=f"Loading the {model_label(choice)} (first run only)")
            models.load_runner(choice)
            on_stage = StageProgress(progress, 0.2, 0.9)
            result = models.refocus_on_device(choice, session.full_result(), layer_index, on_stage)
        progress(0.9, desc="Drawing the panels")
        elapsed = time.perf_counter() - start
        refocused = make_session(
            result, choice, session.model_label, elapsed, upload_size=session.upload_size
        )
        return run_view(refocused, refocused=True)
    except Exception as error:
        return _failed_run(error)


@api_signature
def on_run(progress: Any = gr.Progress(), *values: Any) -> RunView:  # noqa: B008
    """Run event: values = image, question, model, *settings (gradio passes progress first)."""
    image, question, model, *settings = values
    return explain_view(image, question, model, settings, progress=progress_of(progress))


def on_force_layer(
    session: Session | None,
    model: Any,
    layer: Any,
    progress: Any = gr.Progress(),  # noqa: B008
) -> RunView:
    """Refocus event: stages 1-4 of the session's run again, from the layer on the slider."""
    return refocus_view(session, model, layer, progress=progress_of(progress))


def on_layer(
    session: Session | None, layer: Any, heads: Any, opacity: Any, smooth: Any
) -> tuple[Any, Any, Any]:
    """Redraw the three heat maps from the session: never runs the model."""
    if session is None:
        return gr.skip(), gr.skip(), gr.skip()
    try:
        return layer_frames(
            session,
            whole("layer", layer),
            str(heads or "method"),
            number("opacity", opacity),
            bool(smooth),
        )
    except Exception as error:
        warn(friendly(error))
        return gr.skip(), gr.skip(), gr.skip()


def on_export(
    session: Session | None, layer: Any, heads: Any, opacity: Any, smooth: Any
) -> tuple[Any, str]:
    """Write the slide PNG and the result JSON; returns (file paths, status)."""
    if session is None:
        return None, warn(no_run_message())
    try:
        files = write_exports(
            session,
            whole("layer", layer),
            str(heads or "method"),
            number("opacity", opacity),
            bool(smooth),
        )
        return files, "Exported a 1920 × 1080 slide (PNG) and the full result (JSON)."
    except Exception as error:
        return None, warn(friendly(error))


def load_examples(folder: Path) -> list[list[str]]:
    """[image path, question, expected answer, caption] rows from folder/examples.json; [] if
    absent or unreadable."""
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
            fields = (item["question"], item.get("answer", ""), item.get("caption", ""))
            rows.append([str(image), *map(str, fields)])
    return rows
