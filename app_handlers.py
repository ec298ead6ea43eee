"""Handlers of the LASER Lens app: check the input, call `laser_core`, draw with `viz`, return.

`app.py` lays the page out and wires events to the `on_*` functions below; this module holds what
those events do. No model code lives here: `laser_core` computes, `viz` draws.

Per-user data (the run's result and its overlay geometry) lives in a `Session` kept in `gr.State`,
so moving the layer slider redraws from memory and two users never see each other's maps. The
only module-level state is the model cache (`load_runner`), which holds one model at a time.
Every handler turns bad input into a message (a `gr.Warning` and the status line), never a
traceback.
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args, get_origin, get_type_hints

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from laser_core import (
    HUB_MODELS,
    METHODS,
    VLM,
    LaserConfig,
    LaserResult,
    MethodResult,
    ModelLoadError,
    explain,
    layer_maps,
    load_model,
    run_method,
    select_layer,
)
from laser_core.inputs import check_question, load_image
from viz import (
    CHOSEN_COLOR,
    STATIC_COLOR,
    OverlayCanvas,
    draw_box,
    draw_cells,
    fit_for_display,
    heatmap_panel,
    save_png,
    slide_figure,
    vaq_chart,
    vat_rows,
)
from viz.table_image import table_image

try:  # Hugging Face ZeroGPU: borrow a GPU for each model call; elsewhere a no-op
    import spaces

    _on_gpu: Callable[[Callable[..., Any]], Callable[..., Any]] = spaces.GPU(duration=120)
except ImportError:  # pragma: no cover - spaces is in requirements.txt

    def _on_gpu(fn: Callable[..., Any]) -> Callable[..., Any]:
        return fn


LOG = logging.getLogger("laser_lens")
EMBEDDED = "embedded"  # model-choice value of the embedded toy model
DISPLAY_SIDE = 1024  # longest side of the images the app shows and keeps per session, px
EXPLORER_SIDE = 768  # longest side of each heat-map frame in the attention explorer, px
EXPORT_PREFIX = "laser-lens-"
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
COMPARE_METHODS = ("vanilla", "vicrop", "vcd", "laser") + (("clvs",) if "clvs" in METHODS else ())


# --- model choice and cache -------------------------------------------------------------------


def default_model() -> str:
    """The model set by the LASER_MODEL environment variable (hub id or folder), else embedded."""
    return os.environ.get("LASER_MODEL", "").strip() or EMBEDDED


def model_choices() -> list[tuple[str, str]]:
    """(label, value) pairs: the embedded model first, LASER_MODEL's if different, hub models."""
    choices = [("Embedded toy model (CPU, offline, seconds)", EMBEDDED)]
    chosen = default_model()
    if chosen != EMBEDDED and chosen not in HUB_MODELS:
        choices.append((f"{chosen} (set by LASER_MODEL)", chosen))
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
    mps = getattr(torch.backends, "mps", None)
    return (
        torch.cuda.is_available()
        or (mps is not None and mps.is_available())
        or os.environ.get("LASER_ALLOW_CPU") == "1"
    )


# The GPU functions take the model CHOICE, not the model: on ZeroGPU they run in a worker that
# inherits the cache filled by `load_runner` in the main process, and their arguments are pickled.


@_on_gpu
def _explain_on_device(
    choice: str, image: Image.Image, question: str, config: LaserConfig
) -> LaserResult:
    return explain(load_runner(choice), image, question, config)


@_on_gpu
def _method_on_device(
    choice: str, image: Image.Image, question: str, method: str, config: LaserConfig
) -> MethodResult:
    return run_method(load_runner(choice), image, question, method, config)


# --- settings: one control per LaserConfig field -------------------------------------------------

SettingKind = Literal[
    "bool",
    "choice",
    "int",
    "float",
    "text",
    "optional_int",
    "optional_float",
    "layers",
    "count_or_fraction",
]


@dataclass(frozen=True)
class Setting:
    """One `LaserConfig` field as the settings panel shows it."""

    name: str
    kind: SettingKind
    default: Any
    help: str  # the field's comment in laser_core/config.py: meaning and range
    section: str  # the comment block it sits in, e.g. "stage 2: crop"
    choices: tuple[str, ...] = ()


_FIELD_LINE = re.compile(r"^ {4}(\w+): [^=]+=.*?#\s*(.+)$")
_SECTION_LINE = re.compile(r"^ {4}# -+ (.+?) -+$")


def _field_docs() -> dict[str, tuple[str, str]]:
    """name -> (comment, section), read from LaserConfig's source: one source of truth."""
    docs, section = {}, "settings"
    for line in inspect.getsource(LaserConfig).splitlines():
        if match := _SECTION_LINE.match(line):
            section = match.group(1)
        elif match := _FIELD_LINE.match(line):
            docs[match.group(1)] = (match.group(2).strip(), section)
    return docs


def _kind(hint: Any) -> tuple[SettingKind, tuple[str, ...]]:
    if hint is bool:
        return "bool", ()
    if get_origin(hint) is Literal:
        return "choice", tuple(str(a) for a in get_args(hint))
    simple: dict[Any, SettingKind] = {int: "int", float: "float", str: "text"}
    if hint in simple:
        return simple[hint], ()
    args = set(get_args(hint))
    if args == {int, float}:
        return "count_or_fraction", ()
    optional: dict[Any, SettingKind] = {int: "optional_int", float: "optional_float"}
    rest = args - {type(None)}
    if len(rest) == 1 and type(None) in args:
        (inner,) = rest
        return optional.get(inner, "layers"), ()
    raise TypeError(f"no settings control for the type {hint!r}")


def settings_spec() -> tuple[Setting, ...]:
    """Every LaserConfig field in order, with its kind, default, help text and section."""
    docs, hints = _field_docs(), get_type_hints(LaserConfig)
    spec = []
    for field in dataclasses.fields(LaserConfig):
        kind, choices = _kind(hints[field.name])
        help_text, section = docs.get(field.name, ("", "settings"))
        spec.append(Setting(field.name, kind, field.default, help_text, section, choices))
    return tuple(spec)


SETTINGS = settings_spec()


def config_from_values(values: Sequence[Any]) -> LaserConfig:
    """A LaserConfig from the settings controls' values (in `SETTINGS` order).

    Raises:
        ValueError: a value that does not fit its field, with the field's name.
    """
    if len(values) != len(SETTINGS):
        raise ValueError(f"expected {len(SETTINGS)} settings, got {len(values)}")
    return LaserConfig(**{s.name: _coerce(s, v) for s, v in zip(SETTINGS, values, strict=True)})


def _coerce(setting: Setting, value: Any) -> Any:
    blank = value is None or (isinstance(value, str) and not value.strip())
    kind, name = setting.kind, setting.name
    if kind == "bool":
        return setting.default if value is None else bool(value)
    if kind == "text":
        return setting.default if value is None else str(value)
    if kind == "choice":
        if value is None:
            return setting.default
        if str(value) not in setting.choices:
            raise ValueError(f"{name} must be one of {', '.join(setting.choices)}, got {value!r}")
        return str(value)
    if kind == "layers":
        if blank:
            return None
        parts = [p for p in re.split(r"[,\s]+", str(value).strip()) if p]
        if not all(p.isdigit() for p in parts):
            raise ValueError(f"{name}: write layer numbers separated by commas, e.g. 8, 9, 10")
        return tuple(int(p) for p in parts)
    if blank:
        return None if kind.startswith("optional") else setting.default
    number = _number(name, value)
    if kind in ("int", "optional_int"):
        if not number.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return int(number)
    if kind == "count_or_fraction":
        return int(number) if number >= 1 and number.is_integer() else number
    return number


def _number(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


# --- input --------------------------------------------------------------------------------------


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


# --- per-session result ---------------------------------------------------------------------------


@dataclass
class Session:
    """One user's last run, kept in gr.State: everything the panels redraw from."""

    result: LaserResult  # its images replaced by display-size copies (see `make_session`)
    source_size: tuple[int, int]  # (width, height) of the ORIGINAL image; boxes refer to it
    canvas: OverlayCanvas  # overlay geometry of this image and grid, computed once per run
    vaq_layer: int  # the layer VAQ picks (differs from result.layer when a layer was forced)
    model_label: str
    seconds: float  # wall time of the run

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


def make_session(result: LaserResult, model_label: str, seconds: float) -> Session:
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
        result.image.size,
        canvas,
        vaq_layer,
        model_label,
        seconds,
    )


def result_dict(session: Session) -> dict[str, Any]:
    """`LaserResult.to_dict()`, with the original image size (the session keeps a small copy)."""
    data = session.result.to_dict()
    data["image_size"] = list(session.source_size)
    return data


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
    title = "Visual Activation by Query (VAQ) per layer"
    if r.config.get("force_layer") is not None:
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


def slide_image(
    session: Session, layer: int, heads: str = "method", opacity: float = 0.55, smooth: bool = False
) -> np.ndarray:
    """Every panel on one 16:9 slide, the explorer at `layer`."""
    r = session.result
    raw, relative, contrastive = layer_frames(session, layer, heads, opacity, smooth)
    boxed, crop = crop_images(session)
    marked, counterfactual = counterfactual_images(session)
    panels = [
        ("Image and LASER's crop", boxed),
        ("Raw attention", raw),
        ("Relative attention", relative),
        ("Contrastive attention", contrastive),
        ("VAQ per layer", vaq_image(session)),
        ("Crop I+ (model input)", crop),
        ("Masked cells and I−", _side_by_side(marked, counterfactual)),
        ("VAT table (orange: chosen)", _vat_picture(session, max_rows=10)),
    ]
    vat = "VAT applied" if r.vat_applied else "VAT not applied"
    layer_text = (
        f"layer {r.layer} forced (VAQ picks {session.vaq_layer})"
        if r.config.get("force_layer") is not None
        else f"l* = {r.layer}"
    )
    subtitle = (
        f"LASER: {r.answer or '(empty)'}  ·  vanilla: {r.baseline_answer or '(empty)'}  ·  "
        f"{layer_text}, static {r.static_layer}  ·  {vat}  ·  {session.model_label}"
    )
    return slide_figure(panels, title=f"LASER Lens · {r.question}", subtitle=subtitle, columns=4)


def _side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Two pictures on one white strip, the right one scaled to the left one's height."""
    height = left.shape[0]
    scaled = Image.fromarray(right).resize(
        (max(1, round(right.shape[1] * height / right.shape[0])), height)
    )
    gap = np.full((height, max(8, height // 30), 3), 255, dtype=np.uint8)
    return np.concatenate([left, gap, np.asarray(scaled)], axis=1)


def _vat_picture(session: Session, max_rows: int = 12) -> np.ndarray:
    """The first rows of the VAT table as a picture, generated tokens in the l* colour."""
    headers, rows = vat_rows([dataclasses.asdict(step) for step in session.result.steps])
    keep = [i for i, name in enumerate(headers) if name not in ("token", "chosen")]
    marked = {index for index, row in enumerate(rows[:max_rows]) if row[-1]}
    return table_image(
        [headers[i] for i in keep],
        [[row[i] for i in keep] for row in rows[:max_rows]],
        marked=marked,
    )


def write_exports(
    session: Session, layer: int, heads: str = "method", opacity: float = 0.55, smooth: bool = False
) -> list[str]:
    """The slide PNG and the result JSON in a fresh temporary folder, each written atomically.

    Gradio copies returned files into its own cache, so export folders older than an hour are
    removed here.
    """
    _prune_exports(max_age=3600.0)
    folder = Path(tempfile.mkdtemp(prefix=EXPORT_PREFIX))
    png = save_png(slide_image(session, layer, heads, opacity, smooth), folder / "laser-slide.png")
    target = folder / "laser-result.json"
    staging = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
    staging.write_text(json.dumps(result_dict(session), indent=1))
    os.replace(staging, target)
    return [str(png), str(target)]


def _prune_exports(max_age: float) -> None:
    cutoff = time.time() - max_age
    for old in Path(tempfile.gettempdir()).glob(f"{EXPORT_PREFIX}*"):
        try:
            if old.is_dir() and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:  # another worker removed it first
            continue


# --- event handlers -----------------------------------------------------------------------------


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


def _no_progress(*_: Any, **__: Any) -> None:
    return None


def _friendly(error: Exception) -> str:
    """A message for the user; unexpected errors are logged with their traceback."""
    if isinstance(error, (ValueError, ModelLoadError)):
        text = str(error).strip() or type(error).__name__
        return text[0].upper() + text[1:]
    LOG.exception("unexpected error in a LASER Lens handler")
    return f"Something went wrong ({type(error).__name__}: {str(error)[:300]}). Try again."


def _warn(message: str) -> str:
    gr.Warning(message)
    return f"⚠️ {message}"


def _model_label(choice: str) -> str:
    return "embedded toy model" if choice == EMBEDDED else choice


def _inputs(
    image: Any, question: Any, model: Any, settings: Sequence[Any]
) -> tuple[Image.Image, str, str, LaserConfig]:
    pil = read_image(image)
    text = check_question("" if question is None else question)
    config = config_from_values(settings)
    choice = str(model or default_model())
    return pil, text, choice, config


def explain_view(
    image: Any,
    question: Any,
    model: Any,
    settings: Sequence[Any],
    *,
    force_layer: Any = None,
    progress: Callable[..., Any] = _no_progress,
) -> RunView:
    """Run LASER and draw every panel; on bad input only the status changes."""
    try:
        progress(0.0, desc="Checking the image, the question and the settings")
        pil, text, choice, config = _inputs(image, question, model, settings)
        if force_layer is not None:
            config = dataclasses.replace(config, force_layer=int(_number("layer", force_layer)))
        start = time.perf_counter()
        progress(0.1, desc=f"Loading the {_model_label(choice)} (first run only)")
        load_runner(choice)
        progress(
            0.3,
            desc="LASER: attention capture → layer choice → crop → counterfactual → VAT decoding",
        )
        result = _explain_on_device(choice, pil, text, config)
        progress(0.85, desc="Drawing the panels")
        session = make_session(result, _model_label(choice), time.perf_counter() - start)
        return run_view(session)
    except Exception as error:  # every failure becomes a message, never a traceback
        skip = gr.skip()
        return RunView(skip, _warn(_friendly(error)), *([skip] * 14))


def run_view(session: Session) -> RunView:
    r = session.result
    heads = head_choices(r.attn_query.shape[1], int(r.config.get("k_heads", 8)))
    stages = ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in r.timings.items())
    status = (
        f"Done in {session.seconds:.1f} s with the {session.model_label} "
        f"({r.n_layers} layers, {r.attn_query.shape[1]} heads, grid {r.grid[0]} × "
        f"{r.grid[1]}). Stages: {stages}."
    )
    return RunView(
        session,
        status,
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


def _progress(progress: Any) -> Callable[..., Any]:
    return _no_progress if progress is None else progress


def on_run(progress: Any = gr.Progress(), *values: Any) -> RunView:  # noqa: B008
    """Run event: values = image, question, model, *settings (gradio passes progress first)."""
    image, question, model, *settings = values
    return explain_view(image, question, model, settings, progress=_progress(progress))


def on_force_layer(progress: Any = gr.Progress(), *values: Any) -> RunView:  # noqa: B008
    """Rerun crop, counterfactual and decoding from `layer` (values: image, question, model,
    layer, *settings)."""
    image, question, model, layer, *settings = values
    return explain_view(
        image, question, model, settings, force_layer=layer, progress=_progress(progress)
    )


def _api_signature(fn: Callable[..., Any], names: Sequence[str]) -> None:
    """Give a `(progress, *values)` handler named parameters, so the API lists `question`,
    `k_heads`, ... (not param_7) and every one is optional (None = the control's default)."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter("progress", kind, default=gr.Progress())]
    parameters += [inspect.Parameter(name, kind, default=None) for name in names]
    fn.__signature__ = inspect.Signature(parameters)


_SETTING_NAMES = [s.name for s in SETTINGS]
_api_signature(on_run, ["image", "question", "model", *_SETTING_NAMES])
_api_signature(on_force_layer, ["image", "question", "model", "layer", *_SETTING_NAMES])


def on_layer(
    session: Session | None, layer: Any, heads: Any, opacity: Any, smooth: Any
) -> tuple[Any, Any, Any]:
    """Redraw the three heat maps from the session: never runs the model."""
    if session is None:
        return gr.skip(), gr.skip(), gr.skip()
    try:
        return layer_frames(
            session,
            int(_number("layer", layer)),
            str(heads or "method"),
            _number("opacity", opacity),
            bool(smooth),
        )
    except Exception as error:
        _warn(_friendly(error))
        return gr.skip(), gr.skip(), gr.skip()


def on_export(
    session: Session | None, layer: Any, heads: Any, opacity: Any, smooth: Any
) -> tuple[Any, str]:
    """Write the slide PNG and the result JSON; returns (file paths, status)."""
    if session is None:
        return None, _warn("Run LASER first: there is nothing to export yet.")
    try:
        files = write_exports(
            session,
            int(_number("layer", layer)),
            str(heads or "method"),
            _number("opacity", opacity),
            bool(smooth),
        )
        return files, "Exported a 1920 × 1080 slide (PNG) and the full result (JSON)."
    except Exception as error:
        return None, _warn(_friendly(error))


def compare_view(
    image: Any,
    question: Any,
    model: Any,
    settings: Sequence[Any],
    *,
    progress: Callable[..., Any] = _no_progress,
) -> CompareView:
    """Vanilla, ViCrop, VCD and LASER (and CLVS when available) on the same input."""
    try:
        pil, text, choice, config = _inputs(image, question, model, settings)
        progress(0.0, desc=f"Loading the {_model_label(choice)} (first run only)")
        load_runner(choice)
        results = []
        for index, method in enumerate(COMPARE_METHODS):
            progress(index / len(COMPARE_METHODS), desc=f"Running {METHOD_NAMES[method]}")
            start = time.perf_counter()
            result = _method_on_device(choice, pil, text, method, config)
            results.append((result, time.perf_counter() - start))
        return _compare_outputs(pil, results)
    except Exception as error:
        skip = gr.skip()
        return CompareView(_warn(_friendly(error)), skip, skip, skip)


def _compare_outputs(image: Image.Image, results: list[tuple[MethodResult, float]]) -> CompareView:
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


def on_compare(progress: Any = gr.Progress(), *values: Any) -> CompareView:  # noqa: B008
    """Compare event: values = image, question, model, *settings."""
    image, question, model, *settings = values
    return compare_view(image, question, model, settings, progress=_progress(progress))


_api_signature(on_compare, ["image", "question", "model", *_SETTING_NAMES])


# --- CLVS, the second method (its tab is shown when its modules exist) -------------------------

try:
    from laser_core.clvs import run_clvs
    from viz.clvs_charts import attention_decay_chart, uncertainty_chart

    CLVS_AVAILABLE = True
except ImportError:  # pragma: no cover - CLVS is optional for the app
    CLVS_AVAILABLE = False


@_on_gpu
def _clvs_on_device(choice: str, image: Image.Image, question: str, config: LaserConfig) -> Any:
    return run_clvs(load_runner(choice), image, question, config)


@dataclass
class ClvsSession:
    """One user's last CLVS run, kept in gr.State (images at display size)."""

    result: Any  # ClvsResult
    source_size: tuple[int, int]
    canvas: OverlayCanvas
    model_label: str
    seconds: float


class ClvsView(NamedTuple):
    session: Any
    status: Any
    answer: Any
    layer: Any
    before: Any
    after: Any
    decay: Any
    uncertainty: Any


def clvs_frames(session: ClvsSession, layer: Any, opacity: Any = 0.55) -> tuple[Any, Any]:
    """The first generated token's attention at one layer, without and with smoothing, on one
    colour scale so the two can be compared."""
    r = session.result
    layer = int(min(max(int(_number("layer", layer)), 0), r.n_layers - 1))
    alpha = float(min(max(_number("opacity", opacity), 0.0), 1.0))
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


def clvs_view(
    image: Any,
    question: Any,
    model: Any,
    settings: Sequence[Any],
    *,
    progress: Callable[..., Any] = _no_progress,
) -> ClvsView:
    """Run CLVS and draw its panels; on bad input only the status changes."""
    try:
        if not CLVS_AVAILABLE:
            raise ValueError("CLVS is not available in this installation")
        pil, text, choice, config = _inputs(image, question, model, settings)
        start = time.perf_counter()
        progress(0.1, desc=f"Loading the {_model_label(choice)} (first run only)")
        load_runner(choice)
        progress(0.3, desc="CLVS: decoding with cross-layer vision smoothing")
        result = _clvs_on_device(choice, pil, text, config)
        progress(0.9, desc="Drawing the panels")
        canvas = OverlayCanvas(result.image, result.cell_boxes, max_side=EXPLORER_SIDE)
        small = Image.fromarray(fit_for_display(result.image, DISPLAY_SIDE))
        session = ClvsSession(
            dataclasses.replace(result, image=small),
            result.image.size,
            canvas,
            _model_label(choice),
            time.perf_counter() - start,
        )
        return _clvs_outputs(session)
    except Exception as error:
        skip = gr.skip()
        return ClvsView(skip, _warn(_friendly(error)), *([skip] * 6))


def _clvs_outputs(session: ClvsSession) -> ClvsView:
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


def on_clvs(progress: Any = gr.Progress(), *values: Any) -> ClvsView:  # noqa: B008
    """CLVS event: values = image, question, model, *settings."""
    image, question, model, *settings = values
    return clvs_view(image, question, model, settings, progress=_progress(progress))


_api_signature(on_clvs, ["image", "question", "model", *_SETTING_NAMES])


def on_clvs_layer(session: ClvsSession | None, layer: Any, opacity: Any) -> tuple[Any, Any]:
    """Redraw the CLVS before/after maps from the session: never runs the model."""
    if session is None:
        return gr.skip(), gr.skip()
    try:
        return clvs_frames(session, layer, opacity)
    except Exception as error:
        _warn(_friendly(error))
        return gr.skip(), gr.skip()


# --- examples -----------------------------------------------------------------------------------


def load_examples(folder: Path) -> list[list[str]]:
    """[image path, question, expected answer] rows from folder/examples.json; [] if absent."""
    path = folder / "examples.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    items = data.get("examples", []) if isinstance(data, dict) else data
    rows = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or "image" not in item or "question" not in item:
            continue
        image = folder / str(item["image"])
        if image.is_file():
            rows.append([str(image), str(item["question"]), str(item.get("answer", ""))])
    return rows
