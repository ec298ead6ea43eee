"""The page of LASER Lens: the inputs and answer on top, then the Explain, Compare, CLVS tabs.

`build_demo` lays the page out and wires each event to its handler; building it loads no model
(the first run does, through the cached `ui.models.load_runner`). Model events share one queue
slot (one accelerator); slider redraws skip the queue (no model; about twice as fast end to end).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ui import handlers, texts
from ui.clvs_tab import clvs_tab
from ui.compare import compare_tab
from ui.explorer import RunView
from ui.models import default_model, model_choices
from ui.settings import settings_panel
from ui.widgets import MODEL_SLOT, picture
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
    "api_name": False,
    "show_progress": "hidden",
    "trigger_mode": "always_last",
    "queue": False,
}


def _map_image(kind: str) -> gr.Image:
    """One heatmap panel of the explorer (its title is drawn into the picture)."""
    return picture(
        f"{kind.capitalize()} attention", format="jpeg", elem_id=f"map-{kind}", show_label=False
    )


def _inputs_column(examples_dir: Path) -> tuple[gr.Image, gr.Textbox, gr.Dropdown, gr.Button]:
    """Image, question, model, the run button and the examples."""
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
    run = gr.Button("Run LASER", variant="primary", size="lg")
    examples = handlers.load_examples(examples_dir)
    expected = gr.Textbox(
        label="Expected answer (from the example)", interactive=False, visible=bool(examples)
    )
    if examples:
        gr.Examples(examples, [image, question, expected], label="Examples")
    return image, question, model, run


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
    with gr.Blocks(title=texts.TITLE, delete_cache=(3600, 7200)) as demo:
        session = gr.State(None)
        gr.Markdown(texts.INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                image, question, model, run = _inputs_column(EXAMPLES_DIR)
            with gr.Column(scale=3):
                gr.Markdown(texts.ANSWER_HELP)
                answer = gr.HTML(
                    '<div class="laser-answer"><div class="laser-answer-label">'
                    "LASER answer</div><div class='laser-answer-main'>…</div></div>"
                )
                status = gr.Markdown("Upload an image, type a question and press **Run LASER**.")
        settings = settings_panel()
        model_inputs = [image, question, model, *settings]
        parts = _explain_tab()
        compare_tab(model_inputs)
        clvs_tab(model_inputs)
        with gr.Tab("About"):
            gr.Markdown(texts.CITATION)

        parts.update(session=session, status=status, answer=answer)
        run_outputs = [parts[name] for name in RunView._fields]
        run_event = {"preprocess": False, **MODEL_SLOT}
        run.click(handlers.on_run, model_inputs, run_outputs, api_name="run", **run_event)
        question.submit(handlers.on_run, model_inputs, run_outputs, api_name=False, **run_event)
        parts["force"].click(
            handlers.on_force_layer,
            [session, model, parts["layer"]],
            run_outputs,
            api_name="force_layer",
            **run_event,
        )
        view = [session, *(parts[name] for name in ("layer", "heads", "opacity", "smooth"))]
        maps = [parts[name] for name in ("raw", "relative", "contrastive")]
        for control in view[1:]:
            control.input(handlers.on_layer, view, maps, **REDRAW)
        parts["export"].click(handlers.on_export, view, [parts["files"], status], api_name="export")
    demo.queue(max_size=32)
    return demo


def launch_options() -> dict[str, Any]:
    """launch() arguments shared by `python app.py` and the tests (Gradio 6: theme/css here)."""
    return {
        "theme": THEME,
        "css": texts.CSS,
        "allowed_paths": [str(EXAMPLES_DIR)],
        "footer_links": ["api", "settings"],
    }
