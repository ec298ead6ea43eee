"""The settings panel of LASER Lens: one control per `LaserConfig` field, and back to a config.

The panel is generated from `LaserConfig` itself (types, defaults, and the comment on each field
for its meaning and range), so a new field appears in the app without touching it: `SETTINGS`
describes the fields, `settings_panel` turns each into a control, and the events turn the
controls' values back into a `LaserConfig` with `config_from_values`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin, get_type_hints

import gradio as gr

from laser_core import LaserConfig
from ui import texts

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
    parsed = number(name, value)
    if kind in ("int", "optional_int"):
        if not parsed.is_integer():
            raise ValueError(f"{name} must be a whole number, got {value!r}")
        return int(parsed)
    if kind == "count_or_fraction":
        return int(parsed) if parsed >= 1 and parsed.is_integer() else parsed
    return parsed


def number(name: str, value: Any) -> float:
    """A finite float from a control's value (a number or text).

    Raises:
        ValueError: not a finite number, with the control's `name`.
    """
    try:
        parsed = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(parsed):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return parsed


# --- the panel -----------------------------------------------------------------------------------


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


def settings_panel() -> list[gr.components.Component]:
    controls = []
    with gr.Accordion("Settings: every LaserConfig field", open=False):
        gr.Markdown(texts.SETTINGS_HELP)
        for section in dict.fromkeys(s.section for s in SETTINGS):
            with gr.Group():
                gr.Markdown(f"**{section[0].upper()}{section[1:]}**")
                with gr.Row():
                    controls += [_setting_control(s) for s in SETTINGS if s.section == section]
    return controls
