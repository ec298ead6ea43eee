"""What the CLVS tab shows: the answer card, the two per-layer charts and the before/after maps.

CLVS (cross-layer vision smoothing) is the app's second method. As for LASER, a run is kept per
user in a `ClvsSession` (in `gr.State`), so the layer slider redraws from memory; nothing here
runs a model.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
from PIL import Image

from app_views import DISPLAY_SIDE, EXPLORER_SIDE
from laser_core import ClvsResult
from viz import OverlayCanvas, fit_for_display, heatmap_panel
from viz.clvs_charts import attention_decay_chart, uncertainty_chart


@dataclass
class ClvsSession:
    """One user's last CLVS run, kept in gr.State (images at display size)."""

    result: ClvsResult
    source_size: tuple[int, int]
    canvas: OverlayCanvas
    model_label: str
    seconds: float


class ClvsView(NamedTuple):
    """The outputs of a CLVS run, in the order app.py wires them."""

    session: Any
    status: Any
    answer: Any
    layer: Any
    before: Any
    after: Any
    decay: Any
    uncertainty: Any


def make_clvs_session(result: ClvsResult, model_label: str, seconds: float) -> ClvsSession:
    """Keep a CLVS run: overlay geometry from the original image, then a display-size copy."""
    canvas = OverlayCanvas(result.image, result.cell_boxes, max_side=EXPLORER_SIDE)
    small = Image.fromarray(fit_for_display(result.image, DISPLAY_SIDE))
    return ClvsSession(
        dataclasses.replace(result, image=small), result.image.size, canvas, model_label, seconds
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
    status = f"CLVS done in {session.seconds:.1f} s with the {session.model_label}."
    return ClvsView(
        session,
        status,
        card,
        gr.update(minimum=0, maximum=r.n_layers - 1, value=start_layer),
        *clvs_frames(session, start_layer),
        decay,
        check,
    )
