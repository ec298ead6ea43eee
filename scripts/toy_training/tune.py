"""Phase 2 (``llava``): projector initialised from the vision heads, then LLaVA tuning.

The tower is frozen (or fine-tuned gently, ``tower_lr_scale``); projector and language model
learn to answer questions under a curriculum from 1-2 to 1-4 objects, on full views and on
zoomed crops around objects (the crop the LASER method takes), ViCrop's two-image turns, plus
query-free and generic prompts so those are in distribution (see `data.llava_example`), with a
grounding loss on where two heads look (`GroundingLoss`).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AttentionInterface, LlavaForConditionalGeneration, PreTrainedTokenizerBase
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from laser_core.capture import attach, laser_attention
from laser_core.toy import scenes as W

from .data import Pixels, Prompts, llava_batch
from .evaluate import evaluate
from .loop import autocast, batches, cosine_lr, due, load_checkpoint, save_checkpoint


class GroundingLoss:
    """Attention hook (`laser_core.capture.attach`) that scores where two heads look.

    At decoder layer ``layer`` (a third of the way up: 2 of 6), from the last prompt position
    (where the first answer word is predicted), heads 0 and 1 should put their attention on the
    asked object's image tokens (for a relation: head 0 on the subject, head 1 on the reference
    object). The loss is minus the log of that attention mass, averaged over the turns that ask
    about an object; it is the stand-in for the grounding a real VLM learns from its data, and
    is what lets a small model find a 10-px object among 256 tokens. The SDPA output is left
    untouched.
    """

    def __init__(self, layer: int, last: torch.Tensor, targets: torch.Tensor) -> None:
        """last: [batch] last prompt positions; targets: [batch, 2, seq] bool."""
        self.layer, self.last, self.targets = layer, last, targets
        self.loss: torch.Tensor | None = None

    def __call__(
        self,
        module: torch.nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        scaling: float,
        **kwargs: object,
    ) -> None:
        if getattr(module, "layer_idx") != self.layer:  # noqa: B009 (set by transformers)
            return None
        rows = torch.arange(query.shape[0], device=query.device)
        q = query[rows, :2, self.last]  # [batch, 2, dim]
        k = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)[:, :2]
        scores = torch.einsum("bhd,bhsd->bhs", q, k) * scaling
        future = torch.arange(k.shape[2], device=k.device)[None] > self.last[:, None]
        probs = scores.masked_fill(future[:, None], float("-inf")).softmax(-1)
        mass = (probs * self.targets).sum(-1)  # [batch, 2]
        asked = self.targets.any(-1)
        self.loss = -(mass.clamp_min(1e-6).log() * asked).sum() / asked.sum().clamp_min(1)
        return None


def init_projector(
    model: LlavaForConditionalGeneration,
    heads: dict[str, torch.Tensor],
    tokenizer: PreTrainedTokenizerBase,
    *,
    gain: float,
    place_gain: float,
) -> None:
    """Start the projector as "vision-phase heads, then word embeddings".

    The first linear layer's first rows become the colour / shape / mark heads of the vision
    phase (their logits), and the second layer maps each class's logit to the LM's input
    embedding of that class's word (background classes to nothing). An image token then enters
    the LM as roughly "red + circle + stripes", so answering is close to copying a word, which a
    small LM learns far faster than reading raw features. The place head's column and row go
    to two fixed random directions, ``place_gain`` word-embedding norms long. Every weight
    stays trainable.
    """
    proj = model.model.multi_modal_projector
    emb = model.get_input_embeddings().weight  # [vocab, hidden]
    classes = [None, *W.COLOURS, None, *W.SHAPES, None, *W.MARKS]  # heads' class order
    weight = torch.cat([heads[f"{i}.weight"] for i in range(4)])  # [classes + 2, vision_hidden]
    bias = torch.cat([heads[f"{i}.bias"] for i in range(4)])
    n = len(classes)
    # The place head's column and row (0..1, kept by the GELU) go to two fixed random directions
    # of a word embedding's size.
    place = torch.randn(emb.shape[1], 2, generator=torch.Generator().manual_seed(0))
    place = place / place.norm(dim=0) * emb.norm(dim=1).mean().item()
    with torch.no_grad():
        proj.linear_1.weight[: n + 2] = weight
        proj.linear_1.bias[: n + 2] = bias
        proj.linear_2.weight[:, : n + 2] = 0.0
        for k, word in enumerate(classes):
            if word is not None:
                proj.linear_2.weight[:, k] = gain * emb[tokenizer.convert_tokens_to_ids(word)]
        proj.linear_2.weight[:, n : n + 2] = place_gain * place.to(emb.device)


TRAIN_ATTENTION = "laser_toy_train"


def _float32_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *args: Any,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """The library's hooked SDPA (`laser_core.capture`), in float32 even under bfloat16
    autocast: with attention in bfloat16 the model learnt to read a 10-px object (2-3 of 256
    tokens) far worse (full-view colour about 50 % after phase 2, 97 % with this; model card).
    The vision tower's attention too: with it, phase 3 in bf16 kept shape on the true crop at
    85 % where bf16 attention there left 79 % (one run each; model card)."""
    with torch.autocast(query.device.type, enabled=False):
        return laser_attention(
            module, query.float(), key.float(), value.float(), attention_mask, *args, **kwargs
        )


AttentionInterface.register(TRAIN_ATTENTION, _float32_attention)
AttentionMaskInterface.register(TRAIN_ATTENTION, sdpa_mask)


def tuning_layers(model: LlavaForConditionalGeneration) -> list[torch.nn.Module]:
    """Put ``model`` in training mode with the attention the grounding hook reads (float32 under
    autocast, tower and decoder alike); returns the decoder's attention modules (for
    `grounded_forward`)."""
    model.train()
    model.set_attn_implementation(
        {"text_config": TRAIN_ATTENTION, "vision_config": TRAIN_ATTENTION}
    )
    return [layer.self_attn for layer in model.model.language_model.layers]


def grounded_forward(
    model: LlavaForConditionalGeneration,
    layers: list[torch.nn.Module],
    tensors: tuple[torch.Tensor, ...],
    *,
    output_hidden_states: bool = False,
) -> tuple[Any, torch.Tensor, list[torch.Tensor]]:
    """Run a batch of `data.collate` through ``model`` with the grounding hook at a third of
    the way up.

    Returns:
        The model's output (its ``loss`` is the answer's cross-entropy), the grounding loss,
        and the batch's tensors on the model's device.
    """
    batch = [t.to(model.device) for t in tensors]
    x, ids, mask, lab, last, targets = batch
    hook = GroundingLoss(len(layers) // 3, last, targets)
    with attach(layers, hook):
        out = model(
            input_ids=ids,
            attention_mask=mask,
            pixel_values=x,
            labels=lab,
            output_hidden_states=output_hidden_states,
        )
    assert hook.loss is not None
    return out, hook.loss, batch


def make_optimizer(
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
    ground_weight: float,
    log_every: int,
    ckpt_every: int,
    eval_every: int,
    workers: int,
    precision: str,
) -> None:
    """Tune ``model`` (in place) on question answering; resume from ``ckpt`` if it exists.

    The checkpoint holds the whole model, the optimizer and the step. The loss is the answer's
    cross-entropy plus ``ground_weight`` x the grounding loss (`GroundingLoss`). ``eval_every``
    > 0 evaluates on 40 held-out scenes that often (0 = never). ``workers`` processes make the
    batches ahead (`loop.batches`); ``precision`` is that of the forward passes
    (`loop.autocast`).
    """
    opt, params = make_optimizer(model, lr=lr, tower_lr_scale=tower_lr_scale)
    start = 0
    if (state := load_checkpoint(ckpt)) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
    layers = tuning_layers(model)
    t0, losses, ground = time.time(), [], []
    make = partial(
        llava_batch,
        size=batch,
        pixels=pixels,
        prompts=prompts,
        total=steps,
        full_kinds=full_kinds,
        crop_kinds=crop_kinds,
    )
    for step, tensors in batches(make, start, steps, workers=workers):
        for g in opt.param_groups:
            g["lr"] = g["scale"] * cosine_lr(step, steps, lr, warmup=100)
        with autocast(model.device, precision):
            out, ground_loss, _ = grounded_forward(model, layers, tensors)
        opt.zero_grad()
        (out.loss + ground_weight * ground_loss).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(out.loss.item())
        ground.append(ground_loss.item())
        if due(step, log_every, steps):
            print(
                f"[llava] step {step + 1}/{steps} loss {np.mean(losses[-log_every:]):.3f} "
                f"grounding {np.mean(ground[-log_every:]):.2f} "
                f"({(time.time() - t0) / (step + 1 - start):.2f}s/step, "
                f"{time.strftime('%H:%M:%S')})",
                flush=True,
            )
        if due(step, ckpt_every, steps):
            save_checkpoint(ckpt, model=model.state_dict(), opt=opt.state_dict(), step=step + 1)
        if eval_every and (step + 1) % eval_every == 0:
            evaluate(model, prompts.processor, n_scenes=40)
            model.train()
