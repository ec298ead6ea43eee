"""Export of a LASER Lens run: every panel on one 1920 × 1080 slide (PNG), and the result (JSON).

Files go to a fresh temporary folder per export, each written atomically; gradio copies them into
its own cache, so folders older than an hour are pruned on the next export.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ui.explorer import counterfactual_images, crop_images, layer_frames, vaq_image
from ui.models import public_model_name
from ui.session import Session
from viz import save_png, slide_figure, vat_rows
from viz.table_image import table_image

EXPORT_PREFIX = "laser-lens-"


def result_dict(session: Session) -> dict[str, Any]:
    """`LaserResult.to_dict()`, with the size of the image the run used (the result holds a
    display copy; boxes refer to that size), the upload's size, and the model's public name
    (never a server folder)."""
    data = session.result.to_dict()
    data["model_id"] = public_model_name(data["model_id"])
    data["image_size"] = list(session.source_size)
    data["upload_size"] = list(session.upload_size)
    return data


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
