"""LASER Lens: see where a vision-language model looks, layer by layer, and why LASER crops there.

    python app.py                      # http://127.0.0.1:7860, the embedded toy model
    LASER_MODEL=llava-hf/llava-1.5-7b-hf GRADIO_SERVER_NAME=0.0.0.0 python app.py

This file only lays out the page and wires events to `app_handlers` (which calls `laser_core` and
the views in `app_views`); the settings controls come from `app_settings`. Building `demo` loads
no model: the first run does, through the cached `app_models.load_runner`.
Environment: LASER_MODEL (default model: hub id or folder), LASER_DEVICE (cuda, cpu, ...),
GRADIO_SERVER_NAME / GRADIO_SERVER_PORT or PORT (where to listen).
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: offline

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

import app_copy as ui  # noqa: E402
import app_handlers as h  # noqa: E402
from app_models import default_model, model_choices  # noqa: E402
from app_settings import SETTINGS, Setting  # noqa: E402
from app_views import COMPARE_METHODS, RunView  # noqa: E402
from viz import VAT_HEADERS  # noqa: E402

ROOT = Path(__file__).resolve().parent
EXAMPLES_DIR = ROOT / "assets" / "examples"

MODEL_SLOT: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "model"}  # one accelerator
PICTURE_BUTTONS = ["download", "fullscreen"]  # no "share": the app runs offline
THEME = gr.themes.Default(
    primary_hue="orange",
    secondary_hue="blue",
    # System fonts: the bundled Source Sans bold drew a small-caps "A" (LᴀSER) in Chromium.
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "SFMono-Regular", "Consolas", "DejaVu Sans Mono", "monospace"],
)


def _map_image(kind: str) -> gr.Image:
    """One heatmap panel of the explorer (its title is drawn into the picture)."""
    return gr.Image(
        buttons=PICTURE_BUTTONS,
        label=f"{kind.capitalize()} attention",
        format="jpeg",
        elem_id=f"map-{kind}",
        show_label=False,
    )


def _setting_control(setting: Setting) -> gr.components.Component:
    """One control for a LaserConfig field: label = field name, info = meaning and range."""
    common: dict[str, Any] = {"label": setting.name, "info": setting.help}
    if setting.kind == "bool":
        return gr.Checkbox(value=setting.default, **common)
    if setting.kind == "choice":
        return gr.Dropdown(list(setting.choices), value=setting.default, **common)
    placeholders = {
        "layers": "blank = all layers; e.g. 8, 9, 10",
        "optional_int": "blank = None",
        "optional_float": "blank = None",
    }
    if setting.kind in ("text", *placeholders):  # a blank Number would show (but not send) 0
        placeholder = placeholders.get(setting.kind)
        return gr.Textbox(value=setting.default or "", placeholder=placeholder, **common)
    precision = 0 if setting.kind in ("int", "optional_int") else None
    return gr.Number(value=setting.default, precision=precision, **common)


def _settings_panel() -> list[gr.components.Component]:
    controls = []
    with gr.Accordion("Settings: every LaserConfig field", open=False):
        gr.Markdown(ui.SETTINGS_HELP)
        for section in dict.fromkeys(s.section for s in SETTINGS):
            with gr.Group():
                gr.Markdown(f"**{section[0].upper()}{section[1:]}**")
                with gr.Row():
                    controls += [_setting_control(s) for s in SETTINGS if s.section == section]
    return controls


def _clvs_tab(inputs: list[gr.components.Component]) -> None:
    """The CLVS tab: its answer, charts and before/after maps, wired to its handlers."""
    with gr.Tab("CLVS"):
        gr.Markdown(ui.CLVS_HELP)
        button = gr.Button("Run CLVS", variant="primary")
        session = gr.State(None)
        status = gr.Markdown()
        answer = gr.HTML()
        with gr.Row():
            decay = gr.Image(
                buttons=PICTURE_BUTTONS,
                label="Attention to the image per layer",
                format="png",
                show_label=False,
            )
            check = gr.Image(
                buttons=PICTURE_BUTTONS, label="Uncertainty check", format="png", show_label=False
            )
        gr.Markdown(ui.CLVS_MAPS_HELP)
        with gr.Row():
            layer = gr.Slider(
                0, 31, value=0, step=1, label="Layer", scale=3, elem_id="clvs-layer-slider"
            )
            opacity = gr.Slider(0, 1, value=0.55, step=0.05, label="Opacity", scale=2)
        with gr.Row():
            before = gr.Image(
                buttons=PICTURE_BUTTONS, label="Without smoothing", format="jpeg", show_label=False
            )
            after = gr.Image(
                buttons=PICTURE_BUTTONS, label="With CLVS", format="jpeg", show_label=False
            )
    outputs = [session, status, answer, layer, before, after, decay, check]
    button.click(
        h.on_clvs,
        inputs,
        outputs,
        preprocess=False,
        api_name="clvs",
        **MODEL_SLOT,
    )
    for control in (layer, opacity):
        control.input(
            h.on_clvs_layer,
            [session, layer, opacity],
            [before, after],
            api_name=False,
            show_progress="hidden",
            trigger_mode="always_last",
            queue=False,
        )


def build_demo() -> gr.Blocks:
    """The page. Model events share one queue slot (one accelerator); slider redraws skip the
    queue (no model; about twice as fast end to end)."""
    with gr.Blocks(title=ui.TITLE, delete_cache=(3600, 7200)) as demo:
        session = gr.State(None)
        gr.Markdown(ui.INTRO)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                image = gr.Image(
                    label="Image",
                    type="pil",
                    image_mode=None,
                    height=380,
                    sources=["upload", "clipboard", "webcam"],
                )
                question = gr.Textbox(
                    label="Question", placeholder="e.g. What colour is the circle?"
                )
                model = gr.Dropdown(
                    model_choices(), value=default_model(), label="Model", info=ui.MODEL_NOTE
                )
                run = gr.Button("Run LASER", variant="primary", size="lg")
                examples = h.load_examples(EXAMPLES_DIR)
                expected = gr.Textbox(
                    label="Expected answer (from the example)",
                    interactive=False,
                    visible=bool(examples),
                )
                if examples:
                    gr.Examples(examples, [image, question, expected], label="Examples")
            with gr.Column(scale=3):
                gr.Markdown(ui.ANSWER_HELP)
                answer = gr.HTML(
                    '<div class="laser-answer"><div class="laser-answer-label">'
                    "LASER answer</div><div class='laser-answer-main'>…</div></div>"
                )
                status = gr.Markdown("Upload an image, type a question and press **Run LASER**.")
        settings = _settings_panel()
        model_inputs = [image, question, model]
        with gr.Tab("Explain"):
            gr.Markdown(ui.EXPLORER_HELP)
            with gr.Row():
                layer = gr.Slider(
                    0, 31, value=0, step=1, label="Layer", scale=3, elem_id="layer-slider"
                )
                heads = gr.Dropdown(
                    [("As the method uses them", "method")], value="method", label="Heads", scale=2
                )
                opacity = gr.Slider(0, 1, value=0.55, step=0.05, label="Opacity", scale=2)
                smooth = gr.Checkbox(False, label="Smooth cells", scale=1)
            with gr.Row():
                raw, relative, contrastive = (
                    _map_image(kind) for kind in ("raw", "relative", "contrastive")
                )
            with gr.Row(equal_height=False):
                with gr.Column(scale=3):
                    gr.Markdown(ui.VAQ_HELP)
                    vaq = gr.Image(
                        buttons=PICTURE_BUTTONS,
                        label="VAQ per layer",
                        format="png",
                        height=400,
                        show_label=False,
                    )
                with gr.Column(scale=2):
                    gr.Markdown(ui.FORCE_HELP)
                    force = gr.Button("Crop and decode from the layer on the slider")
                    gr.Markdown(ui.EXPORT_HELP)
                    export = gr.Button("Export slide (PNG) and result (JSON)")
                    files = gr.File(label="Downloads", file_count="multiple", height=140)
            with gr.Row():
                with gr.Column():
                    gr.Markdown(ui.CROP_HELP)
                    with gr.Row():
                        crop_boxed = gr.Image(
                            buttons=PICTURE_BUTTONS, label="Image and crop box", format="png"
                        )
                        crop = gr.Image(
                            buttons=PICTURE_BUTTONS, label="Crop I+ (model input)", format="png"
                        )
                with gr.Column():
                    gr.Markdown(ui.COUNTERFACTUAL_HELP)
                    with gr.Row():
                        masked = gr.Image(
                            buttons=PICTURE_BUTTONS, label="Masked cells", format="png"
                        )
                        counterfactual = gr.Image(
                            buttons=PICTURE_BUTTONS,
                            label="Counterfactual I− (model input)",
                            format="png",
                        )
            gr.Markdown(ui.VAT_HELP)
            vat_note = gr.Markdown()
            vat_table = gr.Dataframe(
                headers=VAT_HEADERS,
                interactive=False,
                wrap=True,
                elem_classes=["vat-table"],
                label="VAT table",
            )
        with gr.Tab("Compare methods"):
            gr.Markdown(ui.COMPARE_HELP)
            compare = gr.Button("Compare methods", variant="primary")
            compare_status = gr.Markdown()
            boxes = gr.Image(
                buttons=PICTURE_BUTTONS,
                label="Crop boxes: ViCrop (blue), LASER (orange)",
                format="png",
                height=420,
            )
            gallery = gr.Gallery(
                buttons=PICTURE_BUTTONS,
                label="What each method read, and its answer",
                columns=len(COMPARE_METHODS),
                height=360,
                object_fit="contain",
            )
            compare_table = gr.Dataframe(
                label="Answers", interactive=False, elem_id="compare-table"
            )
        _clvs_tab(model_inputs + settings)
        with gr.Tab("About"):
            gr.Markdown(ui.CITATION)

        outputs = {
            "session": session,
            "status": status,
            "answer": answer,
            "layer": layer,
            "heads": heads,
            "raw": raw,
            "relative": relative,
            "contrastive": contrastive,
            "vaq": vaq,
            "crop_boxed": crop_boxed,
            "crop": crop,
            "masked": masked,
            "counterfactual": counterfactual,
            "vat_note": vat_note,
            "vat_table": vat_table,
            "files": files,
        }
        run_outputs = [outputs[name] for name in RunView._fields]
        run.click(
            h.on_run,
            model_inputs + settings,
            run_outputs,
            preprocess=False,
            api_name="run",
            **MODEL_SLOT,
        )
        question.submit(
            h.on_run,
            model_inputs + settings,
            run_outputs,
            preprocess=False,
            api_name=False,
            **MODEL_SLOT,
        )
        force.click(
            h.on_force_layer,
            [session, model, layer],
            run_outputs,
            preprocess=False,
            api_name="force_layer",
            **MODEL_SLOT,
        )
        view = [session, layer, heads, opacity, smooth]
        for control in (layer, heads, opacity, smooth):
            control.input(
                h.on_layer,
                view,
                [raw, relative, contrastive],
                api_name=False,
                show_progress="hidden",
                trigger_mode="always_last",
                queue=False,
            )
        export.click(h.on_export, view, [files, status], api_name="export")
        compare.click(
            h.on_compare,
            model_inputs + settings,
            [compare_status, boxes, gallery, compare_table],
            preprocess=False,
            api_name="compare",
            **MODEL_SLOT,
        )
    demo.queue(max_size=32)
    return demo


def launch_options() -> dict[str, Any]:
    """launch() arguments shared by `python app.py` and the tests (Gradio 6: theme/css here)."""
    return {
        "theme": THEME,
        "css": ui.CSS,
        "allowed_paths": [str(EXAMPLES_DIR)],
        "footer_links": ["api", "settings"],
    }


demo = build_demo()

if __name__ == "__main__":
    port = os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("PORT") or "7860"
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(port),
        **launch_options(),
    )
