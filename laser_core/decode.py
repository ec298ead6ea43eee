"""Decoding: one stream, or two streams in lockstep (LASER's VAT, VCD).

Two streams (e.g. the crop I+ and the masked crop I-) are ONE batch of two in `model.generate`, with
a KV cache. At each step a logits processor receives both rows' logits, combines them (VAT or VCD),
picks the next token (greedy or seeded sampling) and forces that token on both rows, so the two
streams stay in lockstep. `generate` keeps doing what it does per architecture (cache, Qwen's
rotary deltas); the processor only decides. Every step is recorded for the VAT table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from transformers import LogitsProcessor, LogitsProcessorList

from laser_core.cancel import check
from laser_core.config import LaserConfig
from laser_core.loading import VLM

# (z_positive, z_negative) -> (difference shown as "VAT", combined scores s)
Combine = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
# What `model(...)` / `model.generate(...)` take: processor output, maybe with pre-encoded images.
ModelInputs = Mapping[str, Any]


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
    """Chooses each next token from one or two rows of logits and forces it on every row.

    Greedy choices and the per-step records stay on the model's device: nothing here waits for
    the device during decoding (`generate`'s own stopping check is the only per-step sync). The
    records are copied out once, after the last step (`steps`).
    """

    def __init__(
        self, tokenizer: Any, config: LaserConfig, combine: Combine | None, use_combined: bool
    ) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.combine = combine
        self.use_combined = use_combined
        self.generator = torch.Generator().manual_seed(config.seed)
        self._tokens: list[Tensor] = []  # [] per step: the chosen id, on the device
        self._ids: list[Tensor] = []  # [k] per step: the candidates shown
        self._values: list[Tensor] = []  # [9, k] per step: z+, z-, VAT, s and their p's

    def __call__(self, input_ids: Tensor, scores: Tensor) -> Tensor:
        check()  # a stopped run (laser_core.cancel) ends here, before choosing another token
        z_plus = scores[0].float()
        z_minus = scores[1].float() if scores.shape[0] > 1 else z_plus
        if self.combine is not None:
            vat, combined = self.combine(z_plus, z_minus)
        else:
            vat, combined = z_plus - z_minus, z_plus
        decision = combined if self.use_combined else z_plus
        token = self._choose(decision)  # 0-d tensor on the device
        self._keep(token, decision, z_plus, z_minus, vat, combined)
        forced = torch.full_like(scores, float("-inf"))
        return forced.index_fill_(1, token.view(1), 0.0)  # on the device: no sync

    def _choose(self, decision: Tensor) -> Tensor:
        if self.config.decoding == "greedy":
            return torch.argmax(decision)
        probs = torch.softmax(decision.cpu() / self.config.temperature, dim=-1)
        return torch.multinomial(probs, 1, generator=self.generator)[0].to(decision.device)

    def _keep(
        self,
        token: Tensor,
        decision: Tensor,
        z_plus: Tensor,
        z_minus: Tensor,
        vat: Tensor,
        combined: Tensor,
    ) -> None:
        k = min(self.config.top_candidates, decision.shape[-1])
        ids = torch.topk(decision, k).indices  # [k]
        # A sampled token outside the top-k is still shown, in the last place.
        shown = torch.where((ids == token).any(), ids, torch.cat([ids[:-1], token.view(1)]))
        logits = torch.stack([z_plus, z_minus, vat, combined])[:, shown]  # [4, k]
        probs = torch.stack(
            [torch.softmax(t, dim=-1)[shown] for t in (z_plus, z_minus, combined)]
        )  # [3, k]
        self._tokens.append(token)
        self._ids.append(shown)
        self._values.append(torch.cat([logits, probs]))

    def steps(self) -> list[DecodeStep]:
        """Every step as plain data (one copy from the device, after decoding)."""
        if not self._tokens:
            return []
        tokens = torch.stack(self._tokens).tolist()
        ids = torch.stack(self._ids).tolist()
        values = torch.stack(self._values).cpu().tolist()  # [T, 9, k]
        steps = []
        for index, (token_id, shown, (zp, zm, vat, s, pp, pm, ps)) in enumerate(
            zip(tokens, ids, values, strict=True)
        ):
            candidates = tuple(
                Candidate(self._piece(i), i, zp[j], zm[j], vat[j], s[j], pp[j], pm[j], ps[j])
                for j, i in enumerate(shown)
            )
            steps.append(
                DecodeStep(index, self._piece(token_id), token_id, self.use_combined, candidates)
            )
        return steps

    def _piece(self, token_id: int) -> str:
        return str(self.tokenizer.convert_ids_to_tokens(token_id))


def decode(
    vlm: VLM,
    inputs: ModelInputs,
    config: LaserConfig,
    *,
    combine: Combine | None = None,
    use_combined: bool = True,
    past_key_values: Any = None,
) -> Decoded:
    """Greedy or sampled decoding of one stream, or of two streams in lockstep.

    Args:
        vlm: The loaded model.
        inputs: Processor output with 1 row (one stream) or 2 rows (positive, negative).
        config: Decoding settings (decoding, temperature, seed, max_new_tokens, top_candidates).
        combine: For two rows, how to combine their logits (e.g. VAT, VCD).
        use_combined: Choose from the combined logits (True) or from the positive row (False,
            e.g. VAT's adaptive mode on an easy question); the combination is recorded anyway.
        past_key_values: A cache of the first tokens of `inputs` (a shared prefix): only the
            rest of the prompt is prefilled. The cache grows; the caller crops it back.

    Returns:
        The answer text, its token ids (without the end token) and every step.
    """
    picker = _Picker(vlm.tokenizer, config, combine, use_combined)
    model: Any = vlm.model  # generate() comes from GenerationMixin
    with torch.inference_mode():
        model.generate(
            **to_device(inputs, vlm.device),
            past_key_values=past_key_values,
            max_new_tokens=config.max_new_tokens,
            do_sample=False,
            num_beams=1,
            logits_processor=LogitsProcessorList([picker]),
            pad_token_id=vlm.tokenizer.pad_token_id,
        )
    steps = picker.steps()
    eos = eos_ids(vlm)
    token_ids: list[int] = []
    for step in steps:
        if step.token_id in eos:
            break
        token_ids.append(step.token_id)
    answer = vlm.tokenizer.decode(token_ids, skip_special_tokens=True).strip()
    return Decoded(answer, tuple(token_ids), tuple(steps))


def to_device(inputs: ModelInputs, device: torch.device) -> dict[str, Any]:
    """Model inputs with their tensors on `device` (pre-encoded images are already there)."""
    return {k: v.to(device) if isinstance(v, Tensor) else v for k, v in inputs.items()}


def eos_ids(vlm: VLM) -> set[int]:
    """The token ids that end an answer."""
    eos = vlm.model.generation_config.eos_token_id
    if eos is None:
        eos = vlm.tokenizer.eos_token_id
    return set(eos) if isinstance(eos, list) else {eos} if eos is not None else set()
