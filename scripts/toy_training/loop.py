"""What the training loops share: the learning-rate schedule, atomic checkpoints, batches made
ahead in worker processes, and the precision of the forward passes."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def cosine_lr(step: int, total: int, peak: float, warmup: int = 50) -> float:
    """Linear warm-up over ``warmup`` steps to ``peak``, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + np.cos(np.pi * min(1.0, (step - warmup) / max(1, total - warmup))))


def pick_precision(precision: str, device: torch.device) -> str:
    """``"bf16"`` or ``"fp32"``; ``"auto"`` is bf16 on a CPU that computes it natively
    (AVX512-BF16 or AMX, as oneDNN reports: how the shipped weights were trained), else fp32 (the
    GPU runs of the model card were all float32, a few minutes anyway)."""
    if precision != "auto":
        return precision
    if device.type == "cpu":
        return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
    return "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """The context of a training forward pass: bfloat16 autocast for ``"bf16"`` (matrix products
    in bfloat16; softmax, norms and losses in float32), nothing for ``"fp32"``. Weights,
    gradients and optimizer state stay float32 either way, and so does the saved model. On this
    project's CPU (AVX512-BF16) a bf16 step takes about 0.58 x an fp32 one. In phases 2
    and 3 attention stays float32, tower and language model (`tune.TRAIN_ATTENTION`)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


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


class _Steps(Dataset):
    """Batch ``i`` of this dataset is ``make(start + i)``."""

    def __init__(self, make: Callable[[int], Any], start: int, stop: int) -> None:
        self.make, self.start, self.stop = make, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> Any:
        return self.make(self.start + i)


def batches(
    make: Callable[[int], Any], start: int, stop: int, *, workers: int
) -> Iterator[tuple[int, Any]]:
    """``(step, make(step))`` for ``step`` in ``start .. stop - 1``, in order.

    Every batch is a function of its step alone (`data`), so making them ahead in ``workers``
    processes (0 = in this one) changes how fast they come, not what they are. On a GPU a step
    is shorter than making its batch in one process; on a CPU, making a batch is about 5 % of a
    step (0.13 s of 2.4 s here), so 0 will do.
    """
    if workers == 0:
        yield from ((step, make(step)) for step in range(start, stop))
        return
    loader = DataLoader(
        _Steps(make, start, stop), batch_size=None, num_workers=workers, prefetch_factor=4
    )
    yield from zip(range(start, stop), loader, strict=True)
