"""The Compare tab: every method on the same image and question, crops and answers side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr
import pandas as pd
from PIL import Image

from laser_core import MethodResult
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
)
from ui.explorer import size_note
from ui.runs import STOPPED, model_turn
from ui.session import DISPLAY_SIDE, Session
from ui.widgets import MODEL_SLOT, PICTURE_BUTTONS, picture
from viz import CHOSEN_COLOR, STATIC_COLOR, draw_box, fit_for_display

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


class CompareView(NamedTuple):
    """The outputs of a comparison, in wiring order."""

    status: Any
    boxes: Any
    gallery: Any
    table: Any


@dataclass(frozen=True)
class _MethodProgress:
    """`on_method` callback: one step of the progress bar per method (pickles on ZeroGPU)."""

    progress: Callable[..., Any]

    def __call__(self, method: str) -> None:
        index = COMPARE_METHODS.index(method) if method in COMPARE_METHODS else 0
        self.progress(index / len(COMPARE_METHODS), desc=f"Running {METHOD_NAMES[method]}")


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
        reads = " (with the full image)" if result.method == "vicrop" else ""
        gallery.append((seen, f"{name}{layer}{reads}: {result.answer or '(empty)'}"))
        rows.append(
            [
                name,
                result.answer,
                "" if result.layer is None else result.layer,
                "full image" if result.box is None else ", ".join(map(str, result.box)),
                _how(result),
                f"{seconds:.2f}",
            ]
        )
    columns = ["method", "answer", "map layer", "crop box (x0, y0, x1, y1)", "how", "seconds"]
    table = pd.DataFrame(rows, columns=columns)
    return CompareView(
        f"Compared {len(results)} methods on the same image and question.", boxes, gallery, table
    )


def _how(result: MethodResult) -> str:
    """What the table says about how a method read the image."""
    if result.method == "vicrop":
        info = result.extras["vicrop"]
        return f"image + crop; window ratio {info['ratio']:g}, sharpness {info['sharpness']:.3g}"
    return {
        "vcd": "the full image, against its noised copy",
        "clvs": "the full image, attention smoothed across layers",
    }.get(result.method, "the full image" if result.box is None else "the crop")


def compare_view(
    image: Any,
    question: Any,
    model: Any,
    settings: Sequence[Any],
    *,
    session: Session | None = None,
    progress: Callable[..., Any] = no_progress,
) -> CompareView:
    """Every method of the tab (`COMPARE_METHODS`) on the same input, side by side.

    When the user's last LASER run (`session`, their own gr.State) was on this very image,
    question, model and settings, its captures and answers are reused, not computed again.
    """
    try:
        inputs = read_inputs(image, question, model, settings)
        choice = inputs.choice
        with model_turn():
            progress(0.0, desc=f"Loading the {model_label(choice)} (first run only)")
            models.load_runner(choice)
            explained = session.full_result() if session and session.choice == choice else None
            by_method = models.methods_on_device(
                choice,
                inputs.image,
                inputs.question,
                COMPARE_METHODS,
                inputs.config,
                _MethodProgress(progress),
                explained,
            )
        timed = [(by_method[m], sum(by_method[m].timings.values())) for m in COMPARE_METHODS]
        view = compare_outputs(inputs.image, timed)
        size = size_note(inputs.image.size, inputs.intake.upload_size)
        return view._replace(status=f"{view.status[:-1]}, on {size}.")
    except Exception as error:
        skip = gr.skip()
        status = STOPPED if isinstance(error, Cancelled) else warn(friendly(error))
        return CompareView(status, skip, skip, skip)


@api_signature(state="session")
def on_compare(progress: Any = gr.Progress(), *values: Any) -> CompareView:  # noqa: B008
    """Compare event: values = image, question, model, *settings, the Explain tab's session."""
    image, question, model, *settings, session = values
    return compare_view(
        image, question, model, settings, session=session, progress=progress_of(progress)
    )


def compare_tab(inputs: list[gr.components.Component], session: gr.State) -> Any:
    """The tab's layout, wired to `on_compare` (inputs: image, question, model, *settings, and
    the Explain tab's session, whose run it reuses); returns the event (for the Stop button)."""
    with gr.Tab("Compare methods"):
        gr.Markdown(texts.COMPARE_HELP)
        button = gr.Button("Compare methods", variant="primary")
        status = gr.Markdown()
        boxes = picture("Crop boxes: ViCrop (blue), LASER (orange)", height=420)
        gallery = gr.Gallery(
            buttons=PICTURE_BUTTONS,
            label="What each method read, and its answer",
            columns=len(COMPARE_METHODS),
            height=360,
            object_fit="contain",
        )
        table = gr.Dataframe(label="Answers", interactive=False, elem_id="compare-table")
    return button.click(
        on_compare,
        [*inputs, session],
        [status, boxes, gallery, table],
        api_name="compare",
        **MODEL_SLOT,
    )
