"""The CLVS tab: answer card, per-layer charts, before/after maps, and the events behind them.

CLVS (cross-layer vision smoothing) is the app's second method. As for LASER, a run is kept per
user in a `ClvsSession` (in `gr.State`), so the layer slider redraws from memory.
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from PIL import Image

from laser_core import ClvsResult
from laser_core.cancel import Cancelled
from ui import models, texts
from ui.events import (
    api_signature,
    friendly,
    model_label,
    no_progress,
    progress_of,
    read_inputs,
    warn,
    whole,
)
from ui.explorer import size_note
from ui.runs import STOPPED, model_turn
from ui.session import DISPLAY_SIDE, EXPLORER_SIDE
from ui.settings import number
from ui.widgets import MODEL_SLOT, picture, session_state
from viz import OverlayCanvas, fit_for_display, heatmap_panel
from viz.clvs_charts import attention_decay_chart, uncertainty_chart


@dataclass
class ClvsSession:
    """One user's last CLVS run, kept in gr.State (images at display size)."""

    result: ClvsResult
    source_size: tuple[int, int]  # the image the run used (the working resolution)
    canvas: OverlayCanvas
    model_label: str
    seconds: float
    upload_size: tuple[int, int]  # as uploaded, before the app downscaled it


class ClvsView(NamedTuple):
    """The outputs of a CLVS run, in the order the page wires them."""

    session: Any
    status: Any
    answer: Any
    layer: Any
    before: Any
    after: Any
    decay: Any
    uncertainty: Any


def make_clvs_session(
    result: ClvsResult,
    model_label: str,
    seconds: float,
    *,
    upload_size: tuple[int, int] | None = None,
) -> ClvsSession:
    """Keep a CLVS run: overlay geometry from the run's image, then a display-size copy."""
    canvas = OverlayCanvas(result.image, result.cell_boxes, max_side=EXPLORER_SIDE)
    small = Image.fromarray(fit_for_display(result.image, DISPLAY_SIDE))
    size = result.image.size
    return ClvsSession(
        dataclasses.replace(result, image=small),
        size,
        canvas,
        model_label,
        seconds,
        upload_size or size,
    )


def clvs_frames(session: ClvsSession, layer: float, opacity: float = 0.55) -> tuple[Any, Any]:
    """The first generated token's attention at one layer, without and with smoothing, on one
    colour scale so the two can be compared. Out-of-range values are clamped."""
    r = session.result
    layer = int(min(max(int(layer), 0), r.n_layers - 1))
    alpha = float(min(max(opacity, 0.0), 1.0))
    before = r.attention_before[0, layer].reshape(r.grid)
    after = r.attention_after[0, layer].reshape(r.grid)
    top = float(np.nanmax([np.nanmax(before), np.nanmax(after), 1e-12]))
    plain, smoothed = (
        heatmap_panel(
            session.canvas,
            np.nan_to_num(heat),
            title=f"{title} · layer {layer}",
            label="attention share",
            opacity=alpha,
            vmin=0.0,
            vmax=top,
        )
        for title, heat in (("Without smoothing", before), ("With CLVS", after))
    )
    return plain, smoothed


def clvs_outputs(session: ClvsSession) -> ClvsView:
    """Every output of a CLVS run: answer card, slider range, maps at the stop layer, charts."""
    r = session.result
    stop = r.stop_layer
    start_layer = stop if stop is not None else r.n_layers - 1
    answer = html.escape(r.answer) if r.answer.strip() else "<i>(empty answer)</i>"
    where = (
        f"smoothing stopped after layer {stop}"
        if stop is not None
        else "smoothing ran through the last layer"
    )
    card = (
        '<div class="laser-answer"><div class="laser-answer-label">CLVS answer</div>'
        f'<div class="laser-answer-main">{answer}</div><div class="laser-answer-facts">'
        f"<span>First token: {where}</span>"
        f"<span>uncertainty checked from layer {r.check_from}</span></div></div>"
    )
    shares = r.image_attention(0)
    plain = shares["baseline"] if shares["baseline"] is not None else shares["before"]
    decay = attention_decay_chart(plain, shares["after"], stop_layer=stop)
    delta = float(r.config.get("clvs_delta", 0.5))
    check = uncertainty_chart(np.asarray(r.uncertainty[0]), delta=delta, stop_layer=stop)
    size = size_note(session.source_size, session.upload_size)
    status = f"CLVS done in {session.seconds:.1f} s with the {session.model_label}, on {size}."
    return ClvsView(
        session,
        status,
        card,
        gr.update(minimum=0, maximum=r.n_layers - 1, value=start_layer),
        *clvs_frames(session, start_layer),
        decay,
        check,
    )


# --- events --------------------------------------------------------------------------------------


def clvs_view(
    image: Any,
    question: Any,
    model: Any,
    settings: Sequence[Any],
    *,
    progress: Callable[..., Any] = no_progress,
) -> ClvsView:
    """Run CLVS and draw its panels; on bad input only the status changes."""
    try:
        inputs = read_inputs(image, question, model, settings)
        choice = inputs.choice
        start = time.perf_counter()
        with model_turn():
            progress(0.1, desc=f"Loading the {model_label(choice)} (first run only)")
            models.load_runner(choice)
            progress(0.3, desc="CLVS: decoding with cross-layer vision smoothing")
            result = models.clvs_on_device(choice, inputs.image, inputs.question, inputs.config)
        progress(0.9, desc="Drawing the panels")
        elapsed = time.perf_counter() - start
        session = make_clvs_session(
            result, model_label(choice), elapsed, upload_size=inputs.intake.upload_size
        )
        return clvs_outputs(session)
    except Exception as error:
        skip = gr.skip()
        status = STOPPED if isinstance(error, Cancelled) else warn(friendly(error))
        return ClvsView(skip, status, *([skip] * 6))


@api_signature
def on_clvs(progress: Any = gr.Progress(), *values: Any) -> ClvsView:  # noqa: B008
    """CLVS event: values = image, question, model, *settings."""
    image, question, model, *settings = values
    return clvs_view(image, question, model, settings, progress=progress_of(progress))


def on_clvs_layer(session: ClvsSession | None, layer: Any, opacity: Any) -> tuple[Any, Any]:
    """Redraw the CLVS before/after maps from the session: never runs the model."""
    if session is None:
        return gr.skip(), gr.skip()
    try:
        return clvs_frames(session, whole("layer", layer), number("opacity", opacity))
    except Exception as error:
        warn(friendly(error))
        return gr.skip(), gr.skip()


# --- layout --------------------------------------------------------------------------------------


def clvs_tab(inputs: list[gr.components.Component]) -> Any:
    """The CLVS tab: its answer, charts and before/after maps, wired to its handlers; returns
    the run event (for the Stop button)."""
    with gr.Tab("CLVS"):
        gr.Markdown(texts.CLVS_HELP)
        button = gr.Button("Run CLVS", variant="primary")
        session = session_state()
        status = gr.Markdown()
        answer = gr.HTML()
        with gr.Row():
            decay = picture("Attention to the image per layer", show_label=False)
            check = picture("Uncertainty check", show_label=False)
        gr.Markdown(texts.CLVS_MAPS_HELP)
        with gr.Row():
            layer = gr.Slider(
                0, 31, value=0, step=1, label="Layer", scale=3, elem_id="clvs-layer-slider"
            )
            opacity = gr.Slider(0, 1, value=0.55, step=0.05, label="Opacity", scale=2)
        with gr.Row():
            before = picture("Without smoothing", format="jpeg", show_label=False)
            after = picture("With CLVS", format="jpeg", show_label=False)
    outputs = [session, status, answer, layer, before, after, decay, check]
    run = button.click(on_clvs, inputs, outputs, api_name="clvs", **MODEL_SLOT)
    for control in (layer, opacity):
        control.input(
            on_clvs_layer,
            [session, layer, opacity],
            [before, after],
            api_name="clvs_redraw" if control is layer else False,  # one API endpoint
            preprocess=False,
            show_progress="hidden",
            trigger_mode="always_last",
            queue=False,
        )
    return run
