"""What LASER Lens shows: a run's result turned into panel images, tables and the answer card.

A run is kept per user in a `Session` (in `gr.State`): the result with display-size copies of its
images, the original image (which `refocus` crops again) and the overlay geometry, computed once.
Moving the layer slider redraws from the session. Nothing here runs a model or parses input:
the functions take sessions and results and return what the page's components show.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from laser_core import LaserResult, MethodResult, layer_maps, select_layer
from viz import (
    CHOSEN_COLOR,
    STATIC_COLOR,
    OverlayCanvas,
    draw_box,
    draw_cells,
    fit_for_display,
    heatmap_panel,
    vaq_chart,
    vat_rows,
)

DISPLAY_SIDE = 1024  # longest side of the images the app shows and keeps per session, px
EXPLORER_SIDE = 768  # longest side of each heat-map frame in the attention explorer, px
MAP_PANELS = {  # map name -> (panel title, colour-bar label)
    "raw": ("Raw attention", "attention share"),
    "relative": ("Relative attention", "ratio to generic prompt"),
    "contrastive": ("Contrastive attention", "relu(with q − without q)"),
}
METHOD_NAMES = {
    "vanilla": "Vanilla",
    "vicrop": "ViCrop",
    "vcd": "VCD",
    "laser": "LASER",
    "laser_no_vat": "LASER without VAT",
    "laser_static": "LASER, static layer",
    "clvs": "CLVS",
}
COMPARE_METHODS = ("vanilla", "vicrop", "vcd", "laser", "clvs")


# --- per-session result ---------------------------------------------------------------------------


@dataclass
class Session:
    """One user's last run, kept in gr.State: everything the panels redraw from."""

    result: LaserResult  # its images replaced by display-size copies (see `make_session`)
    source: Image.Image  # the ORIGINAL image: boxes refer to it, and `refocus` crops it again
    canvas: OverlayCanvas  # overlay geometry of this image and grid, computed once per run
    vaq_layer: int  # the layer VAQ picks (differs from result.layer when a layer was forced)
    choice: str  # the model choice that produced the result
    model_label: str
    seconds: float  # wall time of the run

    @property
    def source_size(self) -> tuple[int, int]:
        """(width, height) of the original image."""
        return self.source.size

    def full_result(self) -> LaserResult:
        """The result with the original image back in place, as `refocus` needs it."""
        return dataclasses.replace(self.result, image=self.source)

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """a_query, a_free, a_generic, top_heads as torch views (no copy) for `layer_maps`."""
        r = self.result
        return tuple(
            torch.from_numpy(a)
            for a in (
                r.attn_query,
                r.attn_free,
                r.attn_generic,
                np.asarray(r.top_heads, dtype=np.int64),
            )
        )


def make_session(result: LaserResult, choice: str, model_label: str, seconds: float) -> Session:
    """Keep a run: overlay geometry from the original image, then display-size image copies."""
    canvas = OverlayCanvas(result.image, result.cell_boxes, max_side=EXPLORER_SIDE)
    small = {
        name: Image.fromarray(fit_for_display(getattr(result, name), DISPLAY_SIDE))
        for name in ("image", "crop_image", "masked_image", "counterfactual_image")
    }
    allowed = result.config.get("allowed_layers")
    vaq_layer = select_layer(torch.from_numpy(result.vaq), allowed)
    return Session(
        dataclasses.replace(result, **small),
        result.image,
        canvas,
        vaq_layer,
        choice,
        model_label,
        seconds,
    )


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


# --- what a run and a comparison return, in the order app.py wires them --------------------


class RunView(NamedTuple):
    """The outputs of a run, in the order app.py wires them."""

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


class CompareView(NamedTuple):
    status: Any
    boxes: Any
    gallery: Any
    table: Any


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
        f"{r.attn_query.shape[1]} heads, grid {r.grid[0]} × {r.grid[1]}). Stages: {stages}."
    )
    if len(r.masked_cells) == 0:
        status += (
            f" No cell got attention from the question at layer {r.layer}, so none was "
            "masked: the counterfactual I− equals the crop I+ (VAT = 0)."
        )
    return status


def compare_outputs(image: Image.Image, results: list[tuple[MethodResult, float]]) -> CompareView:
    display = fit_for_display(image, DISPLAY_SIDE)
    boxes = display
    colors = {"vicrop": STATIC_COLOR, "laser": CHOSEN_COLOR}
    gallery, rows = [], []
    for result, seconds in results:
        name = METHOD_NAMES.get(result.method, result.method)
        if result.box is not None and result.method in colors:
            boxes = draw_box(boxes, result.box, color=colors[result.method], source_size=image.size)
        seen = fit_for_display(result.input_image, DISPLAY_SIDE)
        layer = "" if result.layer is None else f" · layer {result.layer}"
        gallery.append((seen, f"{name}{layer}: {result.answer or '(empty)'}"))
        rows.append(
            [
                name,
                result.answer,
                "" if result.layer is None else result.layer,
                "full image" if result.box is None else ", ".join(map(str, result.box)),
                f"{seconds:.2f}",
            ]
        )
    table = pd.DataFrame(
        rows, columns=["method", "answer", "map layer", "crop box (x0, y0, x1, y1)", "seconds"]
    )
    return CompareView(
        f"Compared {len(results)} methods on the same image and question.", boxes, gallery, table
    )
