"""What every model event of the page shares: reading its inputs, messages, progress, API names.

Bad input becomes a `ValueError` with a sentence a user can act on; `friendly` turns any error
into such a sentence (unexpected ones are logged with their traceback, never shown), `warn` pops
it up. `StageProgress` moves the progress bar as `laser_core` reports each stage.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image

from laser_core import STAGES, LaserConfig, ModelLoadError
from laser_core.inputs import check_question, load_image
from ui import models
from ui.settings import SETTINGS, config_from_values

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


def read_inputs(
    image: Any, question: Any, model: Any, settings: Sequence[Any]
) -> tuple[Image.Image, str, str, LaserConfig]:
    pil = read_image(image)
    text = check_question("" if question is None else question)
    config = config_from_values(settings)
    choice = str(model or models.default_model())
    return pil, text, choice, config


def friendly(error: Exception) -> str:
    """A message for the user; unexpected errors are logged with their traceback."""
    if isinstance(error, (ValueError, ModelLoadError)):
        text = str(error).strip() or type(error).__name__
        return text[0].upper() + text[1:]
    LOG.exception("unexpected error in a LASER Lens handler")
    return f"Something went wrong ({type(error).__name__}: {str(error)[:300]}). Try again."


def warn(message: str) -> str:
    gr.Warning(message)
    return f"⚠️ {message}"


def model_label(choice: str) -> str:
    return "embedded toy model" if choice == models.EMBEDDED else choice


# --- progress -----------------------------------------------------------------------------------


def no_progress(*_: Any, **__: Any) -> None:
    return None


def progress_of(progress: Any) -> Callable[..., Any]:
    return no_progress if progress is None else progress


@dataclass(frozen=True)
class StageProgress:
    """`on_stage` callback: moves the progress bar from `start` to `end` over `STAGES`, showing
    each stage's label. A plain object (not a closure), so it pickles on ZeroGPU."""

    progress: Callable[..., Any]
    start: float
    end: float

    def __call__(self, stage: str) -> None:
        index = STAGES.index(stage) if stage in STAGES else 0
        fraction = self.start + (self.end - self.start) * index / len(STAGES)
        self.progress(fraction, desc=STAGE_LABELS.get(stage, stage))


# --- the API ------------------------------------------------------------------------------------


MODEL_EVENT_INPUTS = ("image", "question", "model", *(s.name for s in SETTINGS))


def api_signature(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Give a `(progress, *values)` model event named parameters, so the API lists `question`,
    `k_heads`, ... (not param_7) and every one is optional (None = the control's default)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter("progress", kind, default=gr.Progress())]
    parameters += [inspect.Parameter(name, kind, default=None) for name in MODEL_EVENT_INPUTS]
    fn.__signature__ = inspect.Signature(parameters)
    return fn
