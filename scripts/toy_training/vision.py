"""Phase 1 (``vision``): the CLIP tower alone learns per-patch colour / shape / mark labels.

A stand-in for CLIP pre-training (end-to-end training from random weights stayed at chance):
three linear heads on the tower's patch features (CLS dropped) classify each patch's colour
(or background), and the shape and mark of the object covering it; a fourth regresses the
patch's column and row, which the language model reads for relations. The heads are kept in the
checkpoint: the LLaVA phase starts its projector from them (`tune.init_projector`).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import LlavaForConditionalGeneration

from laser_core.toy import scenes as W

from .data import Pixels, vision_batch
from .loop import autocast, batches, cosine_lr, due, load_checkpoint, save_checkpoint
from .model import GRID

CLASSES = (len(W.COLOURS) + 1, len(W.SHAPES) + 1, len(W.MARKS) + 1)  # class 0 = background


def build_heads(hidden: int) -> torch.nn.ModuleList:
    """Colour, shape and mark heads, then the place head (the patch's column and row, 0..1),
    which relations read (draws from torch's global RNG)."""
    return torch.nn.ModuleList([torch.nn.Linear(hidden, n) for n in (*CLASSES, 2)])


def _place_targets(device: torch.device) -> torch.Tensor:
    """[GRID * GRID, 2] (column, row) of every patch, scaled to 0..1."""
    row, col = torch.meshgrid(torch.arange(GRID), torch.arange(GRID), indexing="ij")
    return torch.stack([col, row], -1).reshape(-1, 2).float().to(device) / (GRID - 1)


def _heads_loss(
    heads: torch.nn.ModuleList, feats: torch.Tensor, y: torch.Tensor
) -> tuple[torch.Tensor, list[float]]:
    """Summed cross-entropy of the class heads plus the place head's squared error, and each
    class head's accuracy on object patches.

    Args:
        feats: [batch, patch, hidden] tower features.
        y: [batch, 3, patch] labels from `data.vision_batch`.
    """
    place = heads[len(CLASSES)](feats)  # [batch, patch, 2]
    loss = F.mse_loss(place, _place_targets(feats.device).expand_as(place))
    acc = []
    for h, head in enumerate(heads[: len(CLASSES)]):
        logits = head(feats)
        loss = loss + F.cross_entropy(logits.flatten(0, 1), y[:, h].flatten(), ignore_index=-100)
        ok = y[:, h] > 0
        acc.append(((logits.argmax(-1) == y[:, h]) & ok).sum().item() / max(1, ok.sum().item()))
    return loss, acc


def train_vision(
    model: LlavaForConditionalGeneration,
    pixels: Pixels,
    ckpt: Path,
    *,
    steps: int,
    batch: int,
    lr: float,
    log_every: int,
    ckpt_every: int,
    workers: int,
    precision: str,
) -> None:
    """Train ``model``'s tower (in place) with fresh heads; resume from ``ckpt`` if it exists.

    The checkpoint holds tower, heads, optimizer and step; a finished phase is a no-op.
    ``workers`` processes make the batches ahead (`loop.batches`); ``precision`` is that of the
    forward passes (`loop.autocast`).
    """
    tower = model.model.vision_tower
    heads = build_heads(model.config.vision_config.hidden_size).to(model.device)
    params = list(tower.parameters()) + list(heads.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    start = 0
    if (state := load_checkpoint(ckpt)) is not None:
        tower.load_state_dict(state["tower"])
        heads.load_state_dict(state["heads"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
    tower.train()
    t0, acc = time.time(), []
    make = partial(vision_batch, size=batch, pixels=pixels)
    for step, xy in batches(make, start, steps, workers=workers):
        for g in opt.param_groups:
            g["lr"] = cosine_lr(step, steps, lr)
        x, y = (t.to(model.device) for t in xy)
        with autocast(model.device, precision):
            feats = tower(pixel_values=x).last_hidden_state[:, 1:]  # [batch, patch, hidden]
            loss, step_acc = _heads_loss(heads, feats, y)
        acc.extend(step_acc)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if due(step, log_every, steps):
            a = np.array(acc[-3 * log_every :]).reshape(-1, 3).mean(0)
            print(
                f"[vision] step {step + 1}/{steps} loss {loss.item():.3f} "
                f"obj-patch acc colour {a[0]:.2f} shape {a[1]:.2f} mark(zoomed) {a[2]:.2f} "
                f"({(time.time() - t0) / (step + 1 - start):.2f}s/step)",
                flush=True,
            )
        if due(step, ckpt_every, steps):
            save_checkpoint(
                ckpt,
                tower=tower.state_dict(),
                heads=heads.state_dict(),
                opt=opt.state_dict(),
                step=step + 1,
            )
