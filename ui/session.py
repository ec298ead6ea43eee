"""One user's LASER run, kept in `gr.State`: the result at display size and what redraws need.

The result's images are replaced by display-size copies; the image the run used (the upload at
the working resolution, see `ui.uploads`) stays for `refocus`, which crops it again, and the
overlay geometry is computed once per run. Moving the layer slider redraws from the session;
nothing here runs a model. Sessions expire after `LASER_SESSION_TTL` seconds (`ui.limits`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import threading
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from laser_core import LaserResult, select_layer
from viz import OverlayCanvas, fit_for_display

_TRIM_DELAY_S = 1.0  # after a state is deleted, when to hand its freed memory back
_TRIM_PENDING = threading.Event()
DISPLAY_SIDE = 1024  # longest side of the images the app shows and keeps per session, px
EXPLORER_SIDE = 768  # longest side of each heat-map frame in the attention explorer, px


@dataclass
class Session:
    """One user's last run, kept in gr.State: everything the panels redraw from."""

    result: LaserResult  # its images replaced by display-size copies (see `make_session`)
    source: Image.Image  # the image the run used: boxes refer to it, `refocus` crops it again
    canvas: OverlayCanvas  # overlay geometry of this image and grid, computed once per run
    vaq_layer: int  # the layer VAQ picks (differs from result.layer when a layer was forced)
    choice: str  # the model choice that produced the result
    model_label: str
    seconds: float  # wall time of the run
    upload_size: tuple[int, int]  # (width, height) as uploaded, before the app downscaled it

    @property
    def source_size(self) -> tuple[int, int]:
        """(width, height) of the image the run used (the working resolution)."""
        return self.source.size

    def full_result(self) -> LaserResult:
        """The result with the original image back in place, as `refocus` needs it."""
        return dataclasses.replace(self.result, image=self.source)

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


def make_session(
    result: LaserResult,
    choice: str,
    model_label: str,
    seconds: float,
    *,
    upload_size: tuple[int, int] | None = None,
) -> Session:
    """Keep a run: overlay geometry from the run's image, then display-size image copies."""
    canvas = OverlayCanvas(result.image, result.cell_boxes, max_side=EXPLORER_SIDE)
    small = {
        name: Image.fromarray(fit_for_display(getattr(result, name), DISPLAY_SIDE))
        for name in ("image", "crop_image", "masked_image", "counterfactual_image")
    }
    allowed = result.config.get("allowed_layers")
    vaq_layer = select_layer(torch.from_numpy(result.vaq), allowed)
    return Session(
        dataclasses.replace(result, **small),
        result.image,
        canvas,
        vaq_layer,
        choice,
        model_label,
        seconds,
        upload_size or result.image.size,
    )


def release_memory(_: object) -> None:
    """Delete callback of the session states: soon after Gradio drops an expired session, hand
    the freed heap back to the system (glibc keeps it for reuse otherwise, so the server's RSS
    would not show that sessions expire). Several expiries at once share one trim."""
    if _TRIM_PENDING.is_set():
        return
    _TRIM_PENDING.set()
    timer = threading.Timer(_TRIM_DELAY_S, _trim)  # the state is deleted after this callback
    timer.daemon = True
    timer.start()


def _trim() -> None:
    _TRIM_PENDING.clear()
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl): nothing to do
        return
