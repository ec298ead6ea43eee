"""What the methods return, as plain data, and how a LASER run is saved.

`MethodResult` is the answer of any method of `run_method` and what it used to get there.
`LaserResult` keeps everything the app draws (so moving a slider never runs the model again) and
everything a paper figure needs. `to_dict()` is JSON-ready; `save(folder)` writes `result.json`,
`attention.npz` (the three [layer, head, patch] captures) and the images, all or nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from laser_core.decode import DecodeStep

Box = tuple[int, int, int, int]


@dataclass
class MethodResult:
    """The answer of one method and what it used to get there."""

    method: str
    answer: str
    layer: int | None  # the layer whose map placed the crop (None: no crop)
    map: np.ndarray | None  # [rows, cols] that map
    box: Box | None  # the crop (x0, y0, x1, y1) in original pixels
    input_image: Image.Image  # what the answer was decoded from
    steps: tuple[DecodeStep, ...]
    timings: dict[str, float]
    config: dict[str, Any]
    details: LaserResult | None = None  # LASER's stages, for "laser" (see `pipeline.laser`)
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class LaserResult:
    """One LASER explanation. Arrays are numpy float32; layers and heads are 0-based.

    Shapes: L layers, H heads, P = rows * cols visual tokens, k = min(k_heads, H).
    """

    question: str
    model_id: str
    answer: str  # LASER's answer
    baseline_answer: str | None  # vanilla greedy answer on the full image (None: not decoded)
    layer: int  # l*, the layer whose contrastive map drove the crop and mask
    static_layer: int  # the family's fixed layer (ViCrop, laser_static; VAT's adaptive rule)
    vaq: np.ndarray  # [L] layer VAQ
    head_vaq: np.ndarray  # [L, H] head VAQ
    top_heads: np.ndarray  # [L, k] int, top heads per layer
    attn_query: np.ndarray  # [L, H, P] last prompt row over visual keys, with the question
    attn_free: np.ndarray  # [L, H, P] same, question removed
    attn_generic: np.ndarray | None  # [L, H, P] same, generic question (None: not captured)
    raw_maps: np.ndarray  # [L, rows, cols]
    relative_maps: np.ndarray | None  # [L, rows, cols] (None without attn_generic)
    contrastive_maps: np.ndarray  # [L, rows, cols]
    grid: tuple[int, int]
    cell_boxes: np.ndarray  # [rows, cols, 4] x0 y0 x1 y1 in original pixels
    grid_region: tuple[float, float, float, float]  # what the whole grid spans (LLaVA: padded)
    crop_box: Box
    masked_cells: np.ndarray  # [n, 2] int (row, col)
    vat_applied: bool
    steps: tuple[DecodeStep, ...]
    image: Image.Image  # the original image, RGB
    crop_image: Image.Image  # I+
    masked_image: Image.Image  # the full image with the masked cells filled
    counterfactual_image: Image.Image  # I-, the masked image cropped
    timings: dict[str, float]  # seconds per stage
    config: dict[str, Any]  # the LaserConfig used, with family defaults resolved
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.vaq.shape[0])

    def to_dict(self, *, include_attention: bool = False) -> dict[str, Any]:
        """Plain JSON-ready data. The [L, H, P] captures only with `include_attention`."""
        out: dict[str, Any] = {
            "question": self.question,
            "model_id": self.model_id,
            "answer": self.answer,
            "baseline_answer": self.baseline_answer,
            "layer": self.layer,
            "static_layer": self.static_layer,
            "vat_applied": self.vat_applied,
            "grid": list(self.grid),
            "image_size": list(self.image.size),
            "crop_box": list(self.crop_box),
            "vaq": self.vaq.tolist(),
            "head_vaq": self.head_vaq.tolist(),
            "top_heads": self.top_heads.tolist(),
            "raw_maps": self.raw_maps.tolist(),
            "relative_maps": None if self.relative_maps is None else self.relative_maps.tolist(),
            "contrastive_maps": self.contrastive_maps.tolist(),
            "cell_boxes": self.cell_boxes.tolist(),
            "grid_region": list(self.grid_region),
            "masked_cells": self.masked_cells.tolist(),
            "steps": [asdict(step) for step in self.steps],
            "timings": dict(self.timings),
            "config": dict(self.config),
            "extras": _plain(self.extras),
        }
        if include_attention:
            out["attn_query"] = self.attn_query.tolist()
            out["attn_free"] = self.attn_free.tolist()
            out["attn_generic"] = None if self.attn_generic is None else self.attn_generic.tolist()
        return out

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write result.json, attention.npz and PNG images into `folder`, atomically.

        Everything is written into a temporary sibling folder first, which then replaces
        `folder` in one rename: a crash never leaves a half-written result.
        """
        target = Path(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            (staging / "result.json").write_text(json.dumps(self.to_dict(), indent=1))
            captures = {
                "attn_query": self.attn_query,
                "attn_free": self.attn_free,
                "attn_generic": self.attn_generic,
            }
            arrays = {name: a for name, a in captures.items() if a is not None}
            np.savez_compressed(staging / "attention.npz", **arrays)
            for name, image in (
                ("image", self.image),
                ("crop", self.crop_image),
                ("masked", self.masked_image),
                ("counterfactual", self.counterfactual_image),
            ):
                image.save(staging / f"{name}.png")
            _replace_dir(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target


def _replace_dir(source: Path, target: Path) -> None:
    if not target.exists():
        os.replace(source, target)
        return
    backup = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, backup / "previous")
    os.replace(source, target)
    shutil.rmtree(backup, ignore_errors=True)


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
