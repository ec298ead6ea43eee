"""The page of LASER Lens: the inputs and answer on top, then the Explain, Compare, CLVS tabs.

`build_demo` lays the page out and wires each event to its handler; building it loads no model
(the first run does, through the cached `ui.models.load_runner`). Model events share one queue
slot (one accelerator), one job per session, and stop when their user leaves or presses Stop
(`ui.runs`); slider redraws skip the queue (no model; about twice as fast end to end). The limits
of a public deployment (upload size, pixels, queue, sessions) come from `ui.limits`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ui import handlers, texts
from ui.clvs_tab import clvs_tab
from ui.compare import compare_tab
from ui.explorer import RunView
from ui.limits import hosting_limits
from ui.models import default_model, model_choices
from ui.runs import forget_session, job_validator
from ui.settings import settings_panel
from ui.widgets import MODEL_SLOT, picture, session_state
from viz import VAT_HEADERS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "assets" / "examples"
THEME = gr.themes.Default(
    primary_hue="orange",
    secondary_hue="blue",
    # System fonts: the bundled Source Sans bold drew a small-caps "A" (LᴀSER) in Chromium.
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Consolas", "DejaVu Sans Mono", "monospace"],
)
REDRAW: dict[str, Any] = {  # slider events: no model, no queue, only the latest value counts
    "preprocess": False,  # values checked by the handler, with a message
    "show_progress": "hidden",
    "trigger_mode": "always_last",
    "queue": False,
}


def _map_image(kind: str) -> gr.Image:
    """One heatmap panel of the explorer (its title is drawn into the picture)."""
    return picture(
        f"{kind.capitalize()} attention", format="jpeg", elem_id=f"map-{kind}", show_label=False
    )


def _inputs_column() -> tuple[gr.Image, gr.Textbox, gr.Dropdown, gr.Button, gr.Button]:
    """Image, question, model, the run and stop buttons."""
    image = gr.Image(
        label="Image",
        type="pil",
        image_mode=None,
        height=380,
        sources=["upload", "clipboard", "webcam"],
    )
    question = gr.Textbox(label="Question", placeholder="e.g. What colour is the circle?")
    model = gr.Dropdown(
        model_choices(), value=default_model(), label="Model", info=texts.MODEL_NOTE
    )
    with gr.Row():
        run = gr.Button("Run LASER", variant="primary", size="lg", scale=3)
        stop = gr.Button("Stop", variant="stop", size="lg", scale=1)
    return image, question, model, run, stop


def _examples(examples_dir: Path, image: gr.Image, question: gr.Textbox) -> None:
    """The example rows, each with its expected answer and a line on what it shows."""
    examples = handlers.load_examples(examples_dir)
    if not examples:
        return
    with gr.Row():
        expected = gr.Textbox(label="Expected answer (from the example)", interactive=False)
        caption = gr.Textbox(label="What this example shows", interactive=False, scale=3)
    gr.Examples(examples, [image, question, expected, caption], label="Examples")


def _explain_tab() -> dict[str, Any]:
    """The Explain tab's components, by the names `RunView` and the events use."""
    parts: dict[str, Any] = {}
    with gr.Tab("Explain"):
        gr.Markdown(texts.EXPLORER_HELP)
        with gr.Row():
            parts["layer"] = gr.Slider(
                0, 31, value=0, step=1, label="Layer", scale=3, elem_id="layer-slider"
            )
            parts["heads"] = gr.Dropdown(
                [("As the method uses them", "method")], value="method", label="Heads", scale=2
            )
            parts["opacity"] = gr.Slider(0, 1, value=0.55, step=0.05, label="Opacity", scale=2)
            parts["smooth"] = gr.Checkbox(False, label="Smooth cells", scale=1)
        with gr.Row():
            for kind in ("raw", "relative", "contrastive"):
                parts[kind] = _map_image(kind)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                gr.Markdown(texts.VAQ_HELP)
                parts["vaq"] = picture("VAQ per layer", height=400, show_label=False)
            with gr.Column(scale=2):
                gr.Markdown(texts.FORCE_HELP)
                parts["force"] = gr.Button("Crop and decode from the layer on the slider")
                gr.Markdown(texts.EXPORT_HELP)
                parts["export"] = gr.Button("Export slide (PNG) and result (JSON)")
                parts["files"] = gr.File(label="Downloads", file_count="multiple", height=140)
        with gr.Row():
            with gr.Column():
                gr.Markdown(texts.CROP_HELP)
                with gr.Row():
                    parts["crop_boxed"] = picture("Image and crop box")
                    parts["crop"] = picture("Crop I+ (model input)")
            with gr.Column():
                gr.Markdown(texts.COUNTERFACTUAL_HELP)
                with gr.Row():
                    parts["masked"] = picture("Masked cells")
                    parts["counterfactual"] = picture("Counterfactual I− (model input)")
        gr.Markdown(texts.VAT_HELP)
        parts["vat_note"] = gr.Markdown()
        parts["vat_table"] = gr.Dataframe(
            headers=VAT_HEADERS,
            interactive=False,
            wrap=True,
            elem_classes=["vat-table"],
            label="VAT table",
        )
    return parts


def build_demo() -> gr.Blocks:
    """The whole page, every event wired."""
    with gr.Blocks(title=texts.TITLE, delete_cache=(600, 3600)) as demo:
        session = session_state()
        gr.Markdown(texts.INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                image, question, model, run, stop = _inputs_column()
            with gr.Column(scale=3):
                gr.Markdown(texts.ANSWER_HELP)
                answer = gr.HTML(
                    '<div class="laser-answer"><div class="laser-answer-label">'
                    "LASER answer</div><div class='laser-answer-main'>…</div></div>"
                )
                status = gr.Markdown(
                    "Upload an image, type a question and press **Run LASER**.",
                    elem_id="run-status",
                )
                _examples(EXAMPLES_DIR, image, question)
        settings = settings_panel()
        model_inputs = [image, question, model, *settings]
        parts = _explain_tab()
        compare = compare_tab(model_inputs, session)
        clvs = clvs_tab(model_inputs)
        with gr.Tab("About"):
            gr.Markdown(texts.CITATION)

        parts.update(session=session, status=status, answer=answer)
        run_outputs = [parts[name] for name in RunView._fields]
        runs = [
            run.click(handlers.on_run, model_inputs, run_outputs, api_name="run", **MODEL_SLOT),
            question.submit(
                handlers.on_run, model_inputs, run_outputs, api_name=False, **MODEL_SLOT
            ),
            parts["force"].click(
                handlers.on_force_layer,
                [session, model, parts["layer"]],
                run_outputs,
                api_name="force_layer",
                **{**MODEL_SLOT, "validator": job_validator(shown_on=2)},  # the layer slider
            ),
            compare,
            clvs,
        ]
        stop.click(None, None, None, cancels=runs, api_name=False)
        view = [session, *(parts[name] for name in ("layer", "heads", "opacity", "smooth"))]
        maps = [parts[name] for name in ("raw", "relative", "contrastive")]
        for control in view[1:]:
            api_name = "redraw" if control is parts["layer"] else False  # one API endpoint
            control.input(handlers.on_layer, view, maps, api_name=api_name, **REDRAW)
        parts["export"].click(
            handlers.on_export,
            view,
            [parts["files"], status],
            api_name="export",
            preprocess=False,
            validator=job_validator(shown_on=1),  # the layer slider
        )
        demo.unload(forget_session)
    demo.queue(max_size=hosting_limits().queue_size)
    return demo


def launch_options() -> dict[str, Any]:
    """launch() arguments shared by `python app.py` and the tests (Gradio 6: theme/css here),
    with the upload and session limits of `ui.limits`."""
    limits = hosting_limits()
    return {
        "theme": THEME,
        "css": texts.CSS,
        "allowed_paths": [str(EXAMPLES_DIR)],
        "footer_links": ["api", "settings"],
        "max_file_size": limits.max_upload_bytes,
        "state_session_capacity": limits.max_sessions,
    }
