"""Decoding: one stream, or two streams in lockstep (LASER's VAT, VCD).

Two streams (e.g. the crop I+ and the masked crop I-) are ONE batch of two in `model.generate`, with
a KV cache. At each step a logits processor receives both rows' logits, combines them (VAT or VCD),
picks the next token (greedy or seeded sampling) and forces that token on both rows, so the two
streams stay in lockstep. `generate` keeps doing what it does per architecture (cache, Qwen's
rotary deltas); the processor only decides. Every step is recorded for the VAT table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformers import BatchFeature, LogitsProcessor, LogitsProcessorList

from laser_core.cancel import check
from laser_core.config import LaserConfig
from laser_core.loading import VLM

# (z_positive, z_negative) -> (difference shown as "VAT", combined scores s)
Combine = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Candidate:
    """One candidate token at one step. Logits are raw; probabilities are softmaxes over vocab."""

    token: str
    token_id: int
    z_plus: float  # logit on the positive stream (the crop, or the image)
    z_minus: float  # logit on the negative stream (masked crop / noised image); = z_plus if none
    vat: float  # z_plus - z_minus
    score: float  # combined logit s
    p_plus: float
    p_minus: float
    p_score: float


@dataclass(frozen=True)
class DecodeStep:
    index: int
    token: str
    token_id: int
    vat_applied: bool  # whether the choice used s (True) or z_plus alone (False)
    candidates: tuple[Candidate, ...]  # sorted by the logits the choice used, best first


@dataclass(frozen=True)
class Decoded:
    answer: str
    token_ids: tuple[int, ...]
    steps: tuple[DecodeStep, ...]


class _Picker(LogitsProcessor):
    """Chooses each next token from one or two rows of logits and forces it on every row."""

    def __init__(
        self, tokenizer: Any, config: LaserConfig, combine: Combine | None, use_combined: bool
    ) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.combine = combine
        self.use_combined = use_combined
        self.generator = torch.Generator().manual_seed(config.seed)
        self.steps: list[DecodeStep] = []

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        check()  # a stopped run (laser_core.cancel) ends here, before choosing another token
        z_plus = scores[0].float()
        z_minus = scores[1].float() if scores.shape[0] > 1 else z_plus
        if self.combine is not None:
            vat, combined = self.combine(z_plus, z_minus)
        else:
            vat, combined = z_plus - z_minus, z_plus
        decision = combined if self.use_combined else z_plus
        token_id = self._choose(decision)
        self.steps.append(self._record(token_id, z_plus, z_minus, vat, combined, decision))
        forced = torch.full_like(scores, float("-inf"))
        forced[:, token_id] = 0.0
        return forced

    def _choose(self, decision: Tensor) -> int:
        if self.config.decoding == "greedy":
            return int(torch.argmax(decision))
        probs = torch.softmax(decision.cpu() / self.config.temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=self.generator))

    def _record(
        self,
        token_id: int,
        z_plus: Tensor,
        z_minus: Tensor,
        vat: Tensor,
        combined: Tensor,
        decision: Tensor,
    ) -> DecodeStep:
        k = min(self.config.top_candidates, decision.shape[-1])
        ids = torch.topk(decision, k).indices.tolist()
        if token_id not in ids:  # a sampled token outside the top-k is still shown
            ids = ids[:-1] + [token_id]
        probs = [torch.softmax(t, dim=-1) for t in (z_plus, z_minus, combined)]
        candidates = tuple(
            Candidate(
                token=self._piece(i),
                token_id=i,
                z_plus=float(z_plus[i]),
                z_minus=float(z_minus[i]),
                vat=float(vat[i]),
                score=float(combined[i]),
                p_plus=float(probs[0][i]),
                p_minus=float(probs[1][i]),
                p_score=float(probs[2][i]),
            )
            for i in ids
        )
        return DecodeStep(
            len(self.steps), self._piece(token_id), token_id, self.use_combined, candidates
        )

    def _piece(self, token_id: int) -> str:
        return str(self.tokenizer.convert_ids_to_tokens(token_id))


def decode(
    vlm: VLM,
    inputs: BatchFeature,
    config: LaserConfig,
    *,
    combine: Combine | None = None,
    use_combined: bool = True,
) -> Decoded:
    """Greedy or sampled decoding of one stream, or of two streams in lockstep.

    Args:
        vlm: The loaded model.
        inputs: Processor output with 1 row (one stream) or 2 rows (positive, negative).
        config: Decoding settings (decoding, temperature, seed, max_new_tokens, top_candidates).
        combine: For two rows, how to combine their logits (e.g. VAT, VCD).
        use_combined: Choose from the combined logits (True) or from the positive row (False,
            e.g. VAT's adaptive mode on an easy question); the combination is recorded anyway.

    Returns:
        The answer text, its token ids (without the end token) and every step.
    """
    picker = _Picker(vlm.tokenizer, config, combine, use_combined)
    model: Any = vlm.model  # generate() comes from GenerationMixin
    with torch.inference_mode():
        model.generate(
            **inputs.to(vlm.device),
            max_new_tokens=config.max_new_tokens,
            do_sample=False,
            num_beams=1,
            logits_processor=LogitsProcessorList([picker]),
            pad_token_id=vlm.tokenizer.pad_token_id,
        )
    eos = _eos_ids(vlm)
    token_ids: list[int] = []
    for step in picker.steps:
        if step.token_id in eos:
            break
        token_ids.append(step.token_id)
    answer = vlm.tokenizer.decode(token_ids, skip_special_tokens=True).strip()
    return Decoded(answer, tuple(token_ids), tuple(picker.steps))


def _eos_ids(vlm: VLM) -> set[int]:
    eos = vlm.model.generation_config.eos_token_id
    if eos is None:
        eos = vlm.tokenizer.eos_token_id
    return set(eos) if isinstance(eos, list) else {eos} if eos is not None else set()
