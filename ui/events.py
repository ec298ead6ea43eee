"""What every model event of the page shares: reading its inputs, messages, progress, API names.

Bad input becomes a `ValueError` with a sentence a user can act on; `friendly` turns any error
into such a sentence (unexpected ones are logged with their traceback, never shown, and server
paths are left out), `warn` pops it up. Messages may quote what a user typed, so they are shown
escaped: never as HTML, links or formulas. `StageProgress` moves the progress bar as
`laser_core` reports each stage.
"""

from __future__ import annotations

import html
import inspect
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr
from PIL import Image

from laser_core import STAGES, LaserConfig, ModelLoadError
from laser_core.cancel import Cancelled
from laser_core.inputs import check_question
from ui import models
from ui.limits import hosting_limits
from ui.runs import STOPPED
from ui.settings import SETTINGS, config_from_values, number
from ui.uploads import Intake, read_upload

LOG = logging.getLogger("laser_lens")
STAGE_LABELS = {  # laser_core.STAGES -> what the progress bar says while the stage runs
    "capture": "Stage 0: capturing attention with and without the question",
    "layer": "Stage 1: scoring every layer (VAQ) and choosing l*",
    "crop": "Stage 2: cropping where the question's attention is (I+)",
    "counterfactual": "Stage 3: masking the attended cells (the counterfactual I−)",
    "decode": "Stage 4: decoding the crop against the counterfactual (VAT)",
}
_SETTING_NAMES = {setting.name for setting in SETTINGS}
_PATH = re.compile(r"(?<![\w.])(?:/|[A-Za-z]:\\)[^\s'\"]+")  # an absolute path in a message


# --- input and messages -------------------------------------------------------------------------


class Inputs(NamedTuple):
    """A model event's inputs, checked: the working image and what else the run needs."""

    intake: Intake  # the working image and the size it was uploaded at
    question: str
    choice: str  # the model choice
    config: LaserConfig

    @property
    def image(self) -> Image.Image:
        return self.intake.image


def read_inputs(image: Any, question: Any, model: Any, settings: Sequence[Any]) -> Inputs:
    """Check every input of a model event; the image last (it is the costly one)."""
    limit = hosting_limits().max_text
    text = check_question("" if question is None else question)
    if len(text) > limit:
        raise ValueError(f"The question is {len(text)} characters long; the limit is {limit}.")
    for setting, value in zip(SETTINGS, settings, strict=False):
        if isinstance(value, str) and len(value) > limit:
            raise ValueError(
                f"{setting.name} is {len(value)} characters long; the limit is {limit}."
            )
    config = config_from_values(settings)
    choice = str(model or models.default_model())
    return Inputs(read_upload(image), text, choice, config)


def whole(name: str, value: Any) -> int:
    """A whole number from a control's value (e.g. a layer).

    Raises:
        ValueError: not a finite whole number, with the control's `name`.
    """
    parsed = number(name, value)
    if not parsed.is_integer():
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(parsed)


def friendly(error: Exception) -> str:
    """A message for the user; unexpected errors are logged with their traceback."""
    if isinstance(error, Cancelled):
        return STOPPED
    if isinstance(error, (ValueError, ModelLoadError)):
        text = str(error).strip() or type(error).__name__
        if text.split()[0] in _SETTING_NAMES:  # a field name, as the settings panel spells it
            return text
        return text[0].upper() + text[1:]
    LOG.exception("unexpected error in a LASER Lens handler")
    detail = _PATH.sub("…", str(error))[:300]
    return f"Something went wrong ({type(error).__name__}: {detail}). Try again."


def warn(message: str) -> str:
    """Pop `message` up and return it for the status line, both shown as plain text."""
    gr.Warning(html.escape(message))
    return f"⚠️ {safe_markdown(message)}"


def safe_markdown(text: str) -> str:
    """`text` for a Markdown component, shown as written: no HTML, link, image, heading,
    table or formula, whatever a user typed into it (one line; most punctuation kept)."""
    text = " ".join(text.split()).replace("\\", "\\\\")
    text = html.escape(text, quote=False)
    for char in "[]`*$":
        text = text.replace(char, "\\" + char)
    text = re.sub(r"(?i)\b(https?|ftp|mailto|javascript|data):", r"\1\\:", text)
    text = re.sub(r"(?i)\b(www)\.", r"\1\\.", text)
    return text.replace("@", "\\@")


def model_label(choice: str) -> str:
    return models.public_model_name(choice)


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


def api_signature(fn: Callable[..., Any] | None = None, *, state: str | None = None) -> Any:
    """Give a `(progress, *values)` model event named parameters, so the API lists `question`,
    `k_heads`, ... (not param_7) and every one is optional (None = the control's default).

    `state` names a last gr.State input (hidden from the API: Gradio fills it), e.g.
    `@api_signature(state="session")`.
    """

    def named(fn: Callable[..., Any]) -> Callable[..., Any]:
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        names = [*MODEL_EVENT_INPUTS, *([state] if state else [])]
        parameters = [inspect.Parameter("progress", kind, default=gr.Progress())]
        parameters += [inspect.Parameter(name, kind, default=None) for name in names]
        fn.__signature__ = inspect.Signature(parameters)
        return fn

    return named(fn) if fn is not None else named
