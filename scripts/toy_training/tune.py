"""Phase 2 (``llava``): projector initialised from the vision heads, then LLaVA tuning.

The tower is frozen (or fine-tuned gently, ``tower_lr_scale``); projector and language model
learn to answer questions under a curriculum from 1-2 to 1-4 objects, on full views and on
zoomed crops around objects (the crop the LASER method takes), plus query-free and generic
prompts so those are in distribution (see `data.llava_example`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from transformers import LlavaForConditionalGeneration, PreTrainedTokenizerBase

from laser_core.toy import scenes as W

from .data import Pixels, Prompts, llava_batch
from .evaluate import evaluate
from .loop import cosine_lr, due, load_checkpoint, save_checkpoint


def init_projector(
    model: LlavaForConditionalGeneration,
    heads: dict[str, torch.Tensor],
    tokenizer: PreTrainedTokenizerBase,
    *,
    gain: float,
) -> None:
    """Start the projector as "vision-phase heads, then word embeddings".

    The first linear layer's first rows become the colour / shape / mark heads of the vision
    phase (their logits), and the second layer maps each class's logit to the LM's input
    embedding of that class's word (background classes to nothing). An image token then enters
    the LM as roughly "red + circle + stripes", so answering is close to copying a word, which a
    small LM learns far faster than reading raw features. Every weight stays trainable.
    """
    proj = model.model.multi_modal_projector
    emb = model.get_input_embeddings().weight  # [vocab, hidden]
    classes = [None, *W.COLOURS, None, *W.SHAPES, None, *W.MARKS]  # heads' class order
    weight = torch.cat([heads[f"{i}.weight"] for i in range(3)])  # [classes, vision_hidden]
    bias = torch.cat([heads[f"{i}.bias"] for i in range(3)])
    n = len(classes)
    with torch.no_grad():
        proj.linear_1.weight[:n] = weight
        proj.linear_1.bias[:n] = bias
        proj.linear_2.weight[:, :n] = 0.0
        for k, word in enumerate(classes):
            if word is not None:
                proj.linear_2.weight[:, k] = gain * emb[tokenizer.convert_tokens_to_ids(word)]


def _optimizer(
    model: LlavaForConditionalGeneration, *, lr: float, tower_lr_scale: float
) -> tuple[torch.optim.AdamW, list[torch.nn.Parameter]]:
    """AdamW over everything but the tower, plus the tower at ``tower_lr_scale`` x lr if > 0.

    Each param group carries its ``scale`` (saved with the optimizer state); returns the
    optimizer and the trained parameters (for gradient clipping).
    """
    tower = model.model.vision_tower
    tower.requires_grad_(tower_lr_scale > 0)
    tower_ids = {id(p) for p in tower.parameters()}
    rest = [p for p in model.parameters() if id(p) not in tower_ids]
    groups = [{"params": rest, "scale": 1.0}]
    if tower_lr_scale > 0:  # fine-tune the pre-trained tower gently
        groups.append({"params": list(tower.parameters()), "scale": tower_lr_scale})
    params = [p for g in groups for p in g["params"]]
    return torch.optim.AdamW(groups, lr=lr, weight_decay=0.01), params


def train_llava(
    model: LlavaForConditionalGeneration,
    pixels: Pixels,
    prompts: Prompts,
    ckpt: Path,
    *,
    steps: int,
    batch: int,
    lr: float,
    tower_lr_scale: float,
    full_kinds: tuple[str, ...],
    crop_kinds: tuple[str, ...],
    log_every: int,
    ckpt_every: int,
    eval_every: int,
) -> None:
    """Tune ``model`` (in place) on question answering; resume from ``ckpt`` if it exists.

    The checkpoint holds the whole model, the optimizer and the step. ``eval_every`` > 0
    evaluates on 40 held-out scenes that often (0 = never).
    """
    opt, params = _optimizer(model, lr=lr, tower_lr_scale=tower_lr_scale)
    start = 0
    if (state := load_checkpoint(ckpt)) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
    model.train()
    t0, losses = time.time(), []
    for step in range(start, steps):
        for g in opt.param_groups:
            g["lr"] = g["scale"] * cosine_lr(step, steps, lr, warmup=100)
        x, ids, mask, lab = (
            t.to(model.device)
            for t in llava_batch(
                step,
                batch,
                pixels,
                prompts,
                total=steps,
                full_kinds=full_kinds,
                crop_kinds=crop_kinds,
            )
        )
        out = model(input_ids=ids, attention_mask=mask, pixel_values=x, labels=lab)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(out.loss.item())
        if due(step, log_every, steps):
            print(
                f"[llava] step {step + 1}/{steps} loss {np.mean(losses[-log_every:]):.3f} "
                f"({(time.time() - t0) / (step + 1 - start):.2f}s/step, "
                f"{time.strftime('%H:%M:%S')})",
                flush=True,
            )
        if due(step, ckpt_every, steps):
            save_checkpoint(ckpt, model=model.state_dict(), opt=opt.state_dict(), step=step + 1)
        if eval_every and (step + 1) % eval_every == 0:
            evaluate(model, prompts.processor, n_scenes=40)
            model.train()
