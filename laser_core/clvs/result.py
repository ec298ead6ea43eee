"""What a CLVS run returns, as plain data: the answer and, per generated token and per layer,
the attention of that token over the image before and after smoothing, the vision memory, the
uncertainty check and where smoothing stopped.

Shapes: T generating forwards (one per decoding step, the end token's included), L layers,
H heads, P = rows * cols visual tokens. Arrays are numpy float32; NaN marks "not computed".
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from laser_core.decode import DecodeStep

Box = tuple[float, float, float, float]


@dataclass
class ClvsResult:
    """One CLVS answer and its trace.

    `attention_before[t, l]` is what layer l's heads gave the image on their own (head mean, over
    the visual keys of the softmax row over all keys), `attention_after[t, l]` what was used after
    unified positions (layer 0) or smoothing (layers >= 1); equal where nothing was changed.
    """

    question: str
    model_id: str
    answer: str
    token_ids: tuple[int, ...]
    steps: tuple[DecodeStep, ...]  # one per generating forward, like every other method
    attention_before: np.ndarray  # [T, L, P] head mean, original row of the generating token
    attention_after: np.ndarray  # [T, L, P] head mean, the row actually used
    head_attention_before: np.ndarray  # [T', L, H, P] per head, first T' = min(T, head_steps)
    head_attention_after: np.ndarray  # [T', L, H, P]
    memory: np.ndarray  # [T, L, P] vision memory mixed in at layer l (layer 0: as initialised)
    uncertainty: np.ndarray  # [T, L] normalised top-k entropy; NaN where not checked
    smoothed: np.ndarray  # [T, L] bool: the row of layer l was changed at step t
    stop_layers: tuple[int | None, ...]  # per step: layer whose check stopped smoothing
    check_from: int  # first layer of the uncertainty check
    baseline_attention: np.ndarray | None  # [L, P] head mean of a plain run's first row
    grid: tuple[int, int]
    cell_boxes: np.ndarray  # [rows, cols, 4] x0 y0 x1 y1 in original pixels
    image: Image.Image
    timings: dict[str, float]
    config: dict[str, Any]  # the LaserConfig used, family defaults resolved
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.attention_before.shape[1])

    @property
    def stop_layer(self) -> int | None:
        """Where smoothing stopped for the first generated token (None: it never stopped)."""
        return self.stop_layers[0] if self.stop_layers else None

    def image_attention(self, step: int = 0, cells: np.ndarray | None = None) -> dict[str, Any]:
        """Attention of one generated token to the image (or to some cells), layer by layer.

        Args:
            step: Decoding step (0 = the first generated token).
            cells: Optional [rows, cols] or [P] bool mask of the cells to sum over (e.g. from
                `cells_in_box`); None = the whole image.

        Returns:
            {"before": [L], "after": [L], "baseline": [L] or None (step 0 only)}: head-mean
            attention summed over the selected patches.
        """
        select = (
            np.ones(self.attention_before.shape[-1], bool)
            if cells is None
            else (np.asarray(cells, bool).ravel())
        )
        baseline = None
        if step == 0 and self.baseline_attention is not None:
            baseline = self.baseline_attention[:, select].sum(-1)
        return {
            "before": self.attention_before[step][:, select].sum(-1),
            "after": self.attention_after[step][:, select].sum(-1),
            "baseline": baseline,
        }

    def to_dict(self, *, include_heads: bool = False) -> dict[str, Any]:
        """Plain JSON-ready data (NaN becomes None). Per-head arrays only with `include_heads`."""
        out: dict[str, Any] = {
            "method": "clvs",
            "question": self.question,
            "model_id": self.model_id,
            "answer": self.answer,
            "token_ids": list(self.token_ids),
            "steps": [asdict(step) for step in self.steps],
            "attention_before": _plain(self.attention_before),
            "attention_after": _plain(self.attention_after),
            "memory": _plain(self.memory),
            "uncertainty": _plain(self.uncertainty),
            "smoothed": self.smoothed.tolist(),
            "stop_layers": list(self.stop_layers),
            "check_from": self.check_from,
            "baseline_attention": _plain(self.baseline_attention),
            "grid": list(self.grid),
            "image_size": list(self.image.size),
            "cell_boxes": self.cell_boxes.tolist(),
            "timings": dict(self.timings),
            "config": dict(self.config),
            "extras": _plain(self.extras),
        }
        if include_heads:
            out["head_attention_before"] = _plain(self.head_attention_before)
            out["head_attention_after"] = _plain(self.head_attention_after)
        return out


def cells_in_box(cell_boxes: np.ndarray, box: Box) -> np.ndarray:
    """[rows, cols] bool: grid cells whose footprint centre lies inside `box` (x0, y0, x1, y1).

    Cells that only cover padding (zero area) are never selected.
    """
    x0, y0, x1, y1 = box
    centre_x = (cell_boxes[..., 0] + cell_boxes[..., 2]) / 2
    centre_y = (cell_boxes[..., 1] + cell_boxes[..., 3]) / 2
    area = (cell_boxes[..., 2] - cell_boxes[..., 0]) * (cell_boxes[..., 3] - cell_boxes[..., 1])
    inside = (centre_x >= x0) & (centre_x < x1) & (centre_y >= y0) & (centre_y < y1)
    return inside & (area > 0)


def _plain(value: Any) -> Any:
    """Arrays and numbers as JSON-ready lists; NaN as None."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return _plain(value.item())
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
