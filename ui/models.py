"""The models of LASER Lens: which ones the app offers, one cached at a time, and the calls that
run them (on a borrowed GPU on Hugging Face ZeroGPU, directly elsewhere).

The cache is the app's only module-level state: one accelerator holds one model, so loading
another model frees the previous one. Everything per user lives in `gr.State` (see `ui.session`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

import torch
from PIL import Image

from laser_core import (
    HUB_MODELS,
    VLM,
    ClvsResult,
    LaserConfig,
    LaserResult,
    MethodResult,
    explain,
    explains,
    load_model,
    refocus,
    run_clvs,
    run_methods,
)
from laser_core.loading import pick_device

StageCallback = Callable[[str], None]
EMBEDDED = "embedded"  # model-choice value of the embedded toy model

try:  # Hugging Face ZeroGPU: borrow a GPU for each model call; elsewhere a no-op
    import spaces

    _on_gpu: Callable[[Callable[..., Any]], Callable[..., Any]] = spaces.GPU(duration=120)
except ImportError:  # pragma: no cover - spaces is in requirements.txt

    def _on_gpu(fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn


def default_model() -> str:
    """The model set by the LASER_MODEL environment variable (hub id or folder), else embedded."""
    return os.environ.get("LASER_MODEL", "").strip() or EMBEDDED


def public_model_name(model: str) -> str:
    """A model as the page and exports may show it: a hub id as is, a local folder by its name
    only (its place on the server stays private)."""
    text = str(model)
    if text == EMBEDDED:
        return "embedded toy model"
    looks_local = os.path.isabs(text) or text.startswith((".", "~")) or "\\" in text
    return os.path.basename(os.path.normpath(text)) if looks_local else text


def model_choices() -> list[tuple[str, str]]:
    """(label, value) pairs: the embedded model first, LASER_MODEL's if different, hub models."""
    choices = [("Embedded toy model (CPU, offline, seconds)", EMBEDDED)]
    chosen = default_model()
    if chosen != EMBEDDED and chosen not in HUB_MODELS:
        choices.append((f"{public_model_name(chosen)} (set by LASER_MODEL)", chosen))
    choices += [(f"{model} (GPU + download)", model) for model in HUB_MODELS]
    return choices


_MODEL_LOCK = threading.Lock()
_MODELS: dict[str, VLM] = {}  # at most one entry: one accelerator holds one model


def load_runner(choice: str) -> VLM:
    """The loaded model for a model choice, cached; loading another one frees the previous."""
    if choice not in {value for _, value in model_choices()}:
        raise ValueError(f"unknown model choice {choice!r}: pick one from the list")
    if choice in HUB_MODELS and choice != default_model() and not _has_accelerator():
        raise ValueError(
            f"{choice} needs a GPU, and this server has none: use the embedded model here "
            "(or set LASER_ALLOW_CPU=1 to try it anyway, slowly, with tens of GB of memory)"
        )
    with _MODEL_LOCK:
        if choice not in _MODELS:
            _MODELS.clear()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            device = os.environ.get("LASER_DEVICE") or None
            _MODELS[choice] = load_model(None if choice == EMBEDDED else choice, device=device)
        return _MODELS[choice]


def _has_accelerator() -> bool:
    return pick_device().type != "cpu" or os.environ.get("LASER_ALLOW_CPU") == "1"


# The GPU functions take the model CHOICE, not the model: on ZeroGPU they run in a worker that
# inherits the cache filled by `load_runner` in the main process, and their arguments are pickled.


@_on_gpu
def explain_on_device(
    choice: str,
    image: Image.Image,
    question: str,
    config: LaserConfig,
    on_stage: StageCallback | None = None,
) -> LaserResult:
    """`explain` with the model of `choice`; `on_stage` is called as each stage starts."""
    return explain(load_runner(choice), image, question, config, on_stage=on_stage)


@_on_gpu
def refocus_on_device(
    choice: str, result: LaserResult, layer: int, on_stage: StageCallback | None = None
) -> LaserResult:
    """`refocus`: stages 1-4 of `result` again from `layer`, with its captured attention."""
    return refocus(load_runner(choice), result, layer, on_stage=on_stage)


@_on_gpu
def methods_on_device(
    choice: str,
    image: Image.Image,
    question: str,
    methods: tuple[str, ...],
    config: LaserConfig,
    on_method: Callable[[str], None] | None = None,
    explained: LaserResult | None = None,
) -> dict[str, MethodResult]:
    """`run_methods`: several methods on one input, sharing the passes they share, and reusing
    `explained` (the user's last LASER run) when it was run on this very input."""
    vlm = load_runner(choice)
    if explained is not None and not explains(vlm, explained, image, question, config):
        explained = None
    return run_methods(
        vlm, image, question, methods, config, explained=explained, on_method=on_method
    )


@_on_gpu
def clvs_on_device(
    choice: str, image: Image.Image, question: str, config: LaserConfig
) -> ClvsResult:
    return run_clvs(load_runner(choice), image, question, config)
