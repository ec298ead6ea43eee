"""The Explain tab's pictures: a LASER session turned into heat maps, charts, crops and tables.

Nothing here runs a model or parses input: the functions take a `Session` (see `ui.session`) and
return what the tab's components show; `run_view` gathers every output of a run in wiring order.
"""

from __future__ import annotations

import dataclasses
import html
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
import pandas as pd

from laser_core import layer_maps
from ui.session import Session
from viz import draw_box, draw_cells, heatmap_panel, vaq_chart, vat_rows

MAP_PANELS = {  # map name -> (panel title, colour-bar label)
    "raw": ("Raw attention", "attention share"),
    "relative": ("Relative attention", "ratio to generic prompt"),
    "contrastive": ("Contrastive attention", "relu(with q − without q)"),
}

# --- drawing --------------------------------------------------------------------------------------


def head_choices(n_heads: int, k_heads: int) -> list[tuple[str, str]]:
    k = min(k_heads, n_heads)
    return [
        ("As the method uses them", "method"),
        ("Mean of all heads", "mean"),
        (f"Top {k} heads by VAQ (of this layer)", "top"),
    ] + [(f"Head {head}", str(head)) for head in range(n_heads)]


def layer_frames(
    session: Session, layer: int, heads: str = "method", opacity: float = 0.55, smooth: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw, relative and contrastive panels of one layer (no model call; ~10 ms each)."""
    r = session.result
    layer = int(min(max(int(layer), 0), r.n_layers - 1))
    opacity = float(min(max(float(opacity), 0.0), 1.0))
    maps, heads_note = _layer_maps(session, layer, heads)
    tag = _layer_tag(session, layer) + heads_note
    raw, relative, contrastive = _same_width(
        [
            heatmap_panel(
                session.canvas,
                maps[name],
                title=f"{title} · layer {layer}{tag}",
                label=label,
                opacity=opacity,
                smooth=bool(smooth),
            )
            for name, (title, label) in MAP_PANELS.items()
        ]
    )
    return raw, relative, contrastive


def _layer_tag(session: Session, layer: int) -> str:
    """What is special about a layer: LASER's l*, the forced layer, or VAQ's pick when forced."""
    r = session.result
    forced = r.config.get("force_layer") is not None
    if layer == r.layer:
        return " (forced)" if forced else " (l*)"
    return " (VAQ's l*)" if forced and layer == session.vaq_layer else ""


def _same_width(frames: list[np.ndarray]) -> list[np.ndarray]:
    """Pad panels on the right with white to one width, so side-by-side panels share a scale
    (their colour bars' tick labels differ in width)."""
    width = max(frame.shape[1] for frame in frames)
    return [
        np.pad(f, ((0, 0), (0, width - f.shape[1]), (0, 0)), constant_values=255) for f in frames
    ]


def _layer_maps(session: Session, layer: int, heads: str) -> tuple[dict[str, np.ndarray], str]:
    """The three maps of a layer for a head choice, and a note for the panel titles."""
    r = session.result
    if heads not in ("mean", "top") and not (
        str(heads).isdigit() and int(heads) < r.attn_query.shape[1]
    ):  # "method": the maps the run kept
        kept = {
            "raw": r.raw_maps[layer],
            "relative": r.relative_maps[layer],
            "contrastive": r.contrastive_maps[layer],
        }
        return kept, ""
    a_query, a_free, a_generic, top_heads = session.tensors()
    choice = heads if heads in ("mean", "top") else int(heads)
    maps = layer_maps(
        a_query,
        a_free,
        a_generic,
        r.grid,
        layer=layer,
        heads=choice,
        top_heads=top_heads,
        eps=float(r.config.get("relative_eps", 1e-6)),
    )
    note = {"mean": " · all heads", "top": " · top heads"}.get(str(heads), f" · head {heads}")
    return {name: m.numpy() for name, m in maps.items()}, note


def answer_html(session: Session) -> str:
    r = session.result
    forced = r.config.get("force_layer") is not None
    layer = (
        f"layer {r.layer} (forced; VAQ picks {session.vaq_layer})" if forced else f"l* = {r.layer}"
    )
    vat = "VAT decoding applied" if r.vat_applied else "VAT not applied (decoded from the crop)"

    def text(answer: str) -> str:
        return html.escape(answer) if answer.strip() else "<i>(empty answer)</i>"

    return (
        '<div class="laser-answer">'
        f'<div class="laser-answer-label">LASER answer</div>'
        f'<div class="laser-answer-main">{text(r.answer)}</div>'
        f'<div class="laser-answer-facts"><span>Vanilla (full image): <b>{text(r.baseline_answer)}'
        f"</b></span><span>{layer} · static layer {r.static_layer}</span><span>{vat}</span></div>"
        "</div>"
    )


def vat_note(session: Session) -> str:
    r = session.result
    mode, alpha = r.config.get("vat_mode"), r.config.get("alpha")
    if r.vat_applied:
        return (
            f"**VAT applied** (mode `{mode}`, α = {alpha}): each token is the best "
            "s = z+ + α·(z+ − z−)."
        )
    why = (
        "VAT is off"
        if mode == "off"
        else f"adaptive mode: layer {r.layer} is not deeper than the static layer {r.static_layer}"
    )
    return (
        f"**VAT not applied** ({why}): each token is the best z+ on the crop; "
        "z−, VAT and s are shown for reference."
    )


def vat_table(session: Session) -> pd.DataFrame:
    headers, rows = vat_rows([dataclasses.asdict(step) for step in session.result.steps])
    return pd.DataFrame(rows, columns=headers)


def vaq_image(session: Session) -> np.ndarray:
    r = session.result
    static = r.static_layer if 0 <= r.static_layer < r.n_layers else None
    if r.config.get("force_layer") is None:
        return vaq_chart(r.vaq, chosen=r.layer, static=static)
    title = f"VAQ per layer (layer {r.layer} forced, VAQ picks {session.vaq_layer})"
    return vaq_chart(r.vaq, chosen=r.layer, static=static, title=title)


def crop_images(session: Session) -> tuple[np.ndarray, np.ndarray]:
    """The image with the crop box, and the crop as the model saw it."""
    r = session.result
    boxed = draw_box(r.image, r.crop_box, source_size=session.source_size)
    return boxed, np.asarray(r.crop_image)


def counterfactual_images(session: Session) -> tuple[np.ndarray, np.ndarray]:
    """The masked image with its cells marked and the crop box; I- as the model saw it."""
    r = session.result
    marked = draw_cells(
        r.masked_image, r.cell_boxes, r.masked_cells, source_size=session.source_size
    )
    marked = draw_box(marked, r.crop_box, source_size=session.source_size)
    return marked, np.asarray(r.counterfactual_image)


# --- what a run returns, in the order the page wires them ---------------------------------


class RunView(NamedTuple):
    """The outputs of a run, in the order the page wires them."""

    session: Any
    status: Any
    answer: Any
    layer: Any
    heads: Any
    raw: Any
    relative: Any
    contrastive: Any
    vaq: Any
    crop_boxed: Any
    crop: Any
    masked: Any
    counterfactual: Any
    vat_note: Any
    vat_table: Any
    files: Any


def run_view(session: Session, *, refocused: bool = False) -> RunView:
    """Every output of a run (or of a refocus: stages 1-4 again from captured attention)."""
    r = session.result
    heads = head_choices(r.attn_query.shape[1], int(r.config.get("k_heads", 8)))
    return RunView(
        session,
        run_status(session, refocused=refocused),
        answer_html(session),
        gr.update(minimum=0, maximum=r.n_layers - 1, value=r.layer),
        gr.update(choices=heads, value="method"),
        *layer_frames(session, r.layer),
        vaq_image(session),
        *crop_images(session),
        *counterfactual_images(session),
        vat_note(session),
        vat_table(session),
        None,
    )


def size_note(used: tuple[int, int], uploaded: tuple[int, int]) -> str:
    """The image size a run used, and the upload's when the app downscaled it."""
    note = f"the image at {used[0]} × {used[1]} px"
    if used != uploaded:
        note += f" (downscaled from the upload's {uploaded[0]} × {uploaded[1]})"
    return note


def run_status(session: Session, *, refocused: bool = False) -> str:
    """The status line: time, model, sizes, per-stage seconds, and an empty mask if any."""
    r = session.result
    stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in r.timings.items())
    what = (
        f"Refocused on layer {r.layer} in {session.seconds:.1f} s, reusing the captured "
        "attention (no new prefill),"
        if refocused
        else f"Done in {session.seconds:.1f} s"
    )
    status = (
        f"{what} with the {session.model_label} ({r.n_layers} layers, "
        f"{r.attn_query.shape[1]} heads, grid {r.grid[0]} × {r.grid[1]}) on "
        f"{size_note(session.source_size, session.upload_size)}. Stages: {stages}."
    )
    if len(r.masked_cells) == 0:
        status += (
            f" No cell got attention from the question at layer {r.layer}, so none was "
            "masked: the counterfactual I− equals the crop I+ (VAT = 0)."
        )
    return status
