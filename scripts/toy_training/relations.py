"""Phase 3 (``relations``): teach the language model to carry place and the relation word to
where it answers.

After phase 2 the grounding heads look at the right two objects, yet relations stay at chance:
linear probes (`scripts/probe_relations.py`) find neither the objects' places nor anything
about the relation at the answer position, at any layer. Neither half of the answer ("which
object is further left" and "was I asked left or right") helps alone, so the answer's loss gives
no gradient towards either.

This phase adds three linear probes, trained with the model and thrown away at export (the
saved model is the plain LLaVA), whose losses ask the residual stream for the missing pieces.
With G the grounding layer (`tune.GroundingLoss`):

- ``keep``: every image token, entering layer G, holds its own grid cell (column, row);
- ``read``: the answer position, leaving layer G, holds the centres of the cells the two
  grounding heads should look at (for a relation: the subject's and the reference's);
- ``word``: the answer position, leaving layer G, holds which relation word was asked.

Each is a squared error (``keep``, ``read``, on cell coordinates scaled to -1..1 and divided by
their variance) or a cross-entropy (``word``), added to the answer's cross-entropy and the
grounding loss. Like the grounding loss, they stand in for what a real VLM learns from far more
data. The batches mix ``share`` relation questions at full view (`data.relation_example`) with
phase 2's single-image turns, whose question mixes put more weight on shape
(`data.RELATION_FULL_KINDS`, `data.RELATION_CROP_KINDS`).

Measured from phase 2's weights (issue 13, the model card's table): ``keep`` and ``read`` alone
left relations at chance; with ``word`` too, relations rose to 90 % at full view with ``share``
0.7, but existence, colour and shape fell to 66-68 %. A second stage at ``share`` 0.3 with the
tower frozen keeps relations (99-100 %) and brings the other kinds back; how far depends on the
tower's learning rate in the first stage: at 1 x and 0.7 x, shape stayed at 75-77 %; at 0.3 x,
it came back (84.5 %) but raw attention at the static layer became more concentrated on the
asked object than the contrastive map; at 0.5 x (the default), relations 99 %, shape 83 %, and
contrastive attention stays the more concentrated. A third stage of 300 steps at ``share`` 0.1,
tower frozen (the default), brought shape to 86 % (the card has the numbers). With ``share``
0.5 or 0.9, relations stayed near chance in 600 steps. Those runs were float32 with phase 2's
question mixes; in bfloat16 (`loop.autocast`) the same recipe read shape 79-82 %, and with
the shape-weighted mixes 85.5 % (run x1, the shipped weights; on another CPU, see the card).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from transformers import LlavaForConditionalGeneration

from .data import (
    Pixels,
    Prompts,
    collate,
    llava_example,
    relation_example,
    two_image_example,
    two_image_step,
)
from .loop import autocast, batches, cosine_lr, due, load_checkpoint, save_checkpoint
from .model import GRID, IMAGE_TOKEN
from .tune import grounded_forward, make_optimizer, tuning_layers

WORDS = ("left", "right", "above", "below")  # the relation words, one class each
CELL_VARIANCE = (GRID + 1) / (3 * (GRID - 1))  # variance of a cell coordinate spread on -1..1


def relation_batch(
    step: int,
    size: int,
    pixels: Pixels,
    prompts: Prompts,
    *,
    share: float,
    full_kinds: tuple[str, ...],
    crop_kinds: tuple[str, ...],
    two_image: bool = False,
) -> tuple[torch.Tensor, ...]:
    """Phase-3 batch of ``step``: ``share`` relation questions, the rest phase 2's turns (at
    the end of its curriculum). Same tensors as `data.llava_batch`. Every stage counts its steps
    from 0, so stages draw the same scenes (mixed by their own ``share``), as the two separate
    runs measured for the model card did. With ``two_image``, the batches that phase 2 makes
    ViCrop's two-image turns (`data.two_image_step`) are such turns here too."""
    rng = np.random.default_rng([3, step])
    if two_image and two_image_step(step):
        examples = [two_image_example(rng, 1, 1, full_kinds=full_kinds) for _ in range(size)]
        return collate(examples, pixels, prompts)
    examples = [
        relation_example(rng)
        if rng.random() < share
        else llava_example(rng, 1, 1, full_kinds=full_kinds, crop_kinds=crop_kinds)
        for _ in range(size)
    ]
    return collate(examples, pixels, prompts)


class Probes(torch.nn.Module):
    """The three linear probes of the module docstring, and their losses."""

    def __init__(self, hidden: int, image_id: int, word_ids: list[int]) -> None:
        super().__init__()
        self.keep = torch.nn.Linear(hidden, 2)
        self.read = torch.nn.Linear(hidden, 4)
        self.word = torch.nn.Linear(hidden, len(word_ids))
        self.image_id = image_id
        self.register_buffer("word_ids", torch.tensor(word_ids), persistent=False)
        cells = torch.arange(GRID * GRID)
        cells = torch.stack([cells % GRID, cells // GRID], -1).float() * 2 / (GRID - 1) - 1
        self.register_buffer("cells", cells, persistent=False)  # [GRID * GRID, 2], -1..1

    def forward(
        self,
        entering: torch.Tensor,
        leaving: torch.Tensor,
        ids: torch.Tensor,
        labels: torch.Tensor,
        last: torch.Tensor,
        targets: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """The three losses.

        Args:
            entering, leaving: [batch, seq, hidden] residual streams entering and leaving the
                grounding layer. ids, labels: [batch, seq]. last: [batch] answer positions.
                targets: [batch, 2, seq] bool, where the two grounding heads should look.
        """
        image = ids == self.image_id  # [batch, seq]
        cell = (image.cumsum(1) - 1) % (GRID * GRID)  # each image token's cell in its image
        keep = self.keep(entering[image]) - self.cells[cell[image]]
        rows = torch.arange(len(ids), device=ids.device)
        at_answer = leaving[rows, last]  # [batch, hidden]
        # Centre of the cells each head should look at; turns with no asked object are skipped.
        weights = targets.float() / targets.sum(-1, keepdim=True).clamp_min(1)  # [batch, 2, seq]
        centres = torch.einsum("bks,bsc->bkc", weights, self.cells[cell].float()).flatten(1)
        asked = targets.any(-1).all(-1)  # [batch]
        read = (self.read(at_answer) - centres)[asked]
        # The relation word asked, if any (only relation questions use these words).
        in_prompt = (ids[..., None] == self.word_ids) & labels.eq(-100)[..., None]
        word_hit = in_prompt.any(1)  # [batch, words]
        word_target = torch.where(word_hit.any(-1), word_hit.float().argmax(-1), -100)
        zero = leaving.sum() * 0  # a loss of 0 that keeps the graph when a batch has no case
        return {
            "keep": keep.pow(2).mean() / CELL_VARIANCE,
            "read": read.pow(2).mean() / CELL_VARIANCE if asked.any() else zero,
            "word": torch.nn.functional.cross_entropy(self.word(at_answer), word_target)
            if word_hit.any()
            else zero,
        }


def train_relations(
    model: LlavaForConditionalGeneration,
    pixels: Pixels,
    prompts: Prompts,
    ckpt: Path,
    *,
    steps: int,
    batch: int,
    lr: float,
    tower_lr_scale: float,
    share: float,
    full_kinds: tuple[str, ...],
    crop_kinds: tuple[str, ...],
    ground_weight: float,
    two_image: bool,
    log_every: int,
    ckpt_every: int,
    workers: int,
    precision: str,
) -> None:
    """Tune ``model`` (in place; the tower at ``tower_lr_scale`` x lr, 0 = frozen) with the
    probes, the forward passes at ``precision`` (`loop.autocast`); resume from ``ckpt`` if it
    exists. The checkpoint holds the model, the probes, the optimizer and the step."""
    tok = prompts.tok
    with torch.random.fork_rng(devices=[]):  # the same probes however the run got here
        torch.manual_seed(3)
        probes = Probes(
            model.config.text_config.hidden_size,
            tok.convert_tokens_to_ids(IMAGE_TOKEN),
            tok.convert_tokens_to_ids(list(WORDS)),
        ).to(model.device)
    opt, params = make_optimizer(model, lr=lr, tower_lr_scale=tower_lr_scale)
    opt.add_param_group({"params": list(probes.parameters()), "scale": 1.0})
    params += list(probes.parameters())
    start = 0
    if (state := load_checkpoint(ckpt)) is not None:
        model.load_state_dict(state["model"])
        probes.load_state_dict(state["probes"])
        opt.load_state_dict(state["opt"])
        start = state["step"]
    layers = tuning_layers(model)
    grounding_layer = len(layers) // 3  # where `grounded_forward` hooks
    t0, logs = time.time(), []
    make = partial(
        relation_batch,
        size=batch,
        pixels=pixels,
        prompts=prompts,
        share=share,
        full_kinds=full_kinds,
        crop_kinds=crop_kinds,
        two_image=two_image,
    )
    for step, tensors in batches(make, start, steps, workers=workers):
        for g in opt.param_groups:
            g["lr"] = g["scale"] * cosine_lr(step, steps, lr, warmup=30)
        with autocast(model.device, precision):
            out, ground_loss, on_device = grounded_forward(
                model, layers, tensors, output_hidden_states=True
            )
            _, ids, _, lab, last, targets = on_device
            hs = out.hidden_states  # [0]: embeddings; [i]: entering layer i
            aux = probes(hs[grounding_layer], hs[grounding_layer + 1], ids, lab, last, targets)
        opt.zero_grad()
        (out.loss + ground_weight * ground_loss + sum(aux.values())).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        logs.append([out.loss.item(), ground_loss.item(), *(v.item() for v in aux.values())])
        if due(step, log_every, steps):
            m = np.mean(logs[-log_every:], 0)
            print(
                f"[relations] step {step + 1}/{steps} loss {m[0]:.3f} grounding {m[1]:.2f} "
                f"keep {m[2]:.3f} read {m[3]:.3f} word {m[4]:.3f} "
                f"({(time.time() - t0) / (step + 1 - start):.2f}s/step, "
                f"{time.strftime('%H:%M:%S')})",
                flush=True,
            )
        if due(step, ckpt_every, steps):
            save_checkpoint(
                ckpt,
                model=model.state_dict(),
                probes=probes.state_dict(),
                opt=opt.state_dict(),
                step=step + 1,
            )
