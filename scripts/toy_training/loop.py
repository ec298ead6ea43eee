"""What both training loops share: the learning-rate schedule and atomic checkpoints."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch


def cosine_lr(step: int, total: int, peak: float, warmup: int = 50) -> float:
    """Linear warm-up over ``warmup`` steps to ``peak``, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def save_checkpoint(path: Path, **state: Any) -> None:
    """``torch.save`` to a temporary file, then rename: an interrupted save keeps the old one."""
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None when there is none yet (a fresh phase)."""
    if not path.exists():
        return None
    return torch.load(path, weights_only=False, map_location="cpu")


def due(step: int, every: int, total: int) -> bool:
    """Whether to log / save after 0-based ``step``: every ``every`` steps and at the end."""
    return (step + 1) % every == 0 or step + 1 == total
