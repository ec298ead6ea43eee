"""Stage 0: capture the last prompt position's attention over the image, every layer and head.

How: the text model runs with our own attention function, registered with transformers'
`AttentionInterface` under `ATTENTION_NAME`. Transformers calls it with q and k AFTER rotary
(and Qwen's 3-D mRoPE) were applied, so the positions are the model's own. With nothing attached
it simply calls the stock SDPA function: outputs are those of `attn_implementation="sdpa"`.

Inside `attach(model_layers, hook)` each attention module carries a hook object; the function
hands it q, k, v and the mask before computing the output. `AttentionRecorder` is such a hook: on
the prefill call of each layer it computes ONE softmax row per head,
`softmax(q_last k^T * scaling + mask_last)`, and keeps its visual part. No `S x S` matrix is ever
built (eager + `output_attentions` would hold all of them: ~1 GB for LLaVA-1.5-7B, ~10 GB for a
large Qwen2-VL image). The parity test checks the rows against eager to 1e-5.

The same name must be registered with `AttentionMaskInterface` too, or transformers passes no mask
and the padding of a batch is silently ignored.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION_NAME = "laser_last_row"
_HOOK_ATTR = "_laser_hook"


class AttentionHook(Protocol):
    """Called by the attention function of every hooked layer, before the output is computed."""

    def __call__(
        self,
        module: nn.Module,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attention_mask: Tensor | None,
        scaling: float,
        **kwargs: Any,
    ) -> Tensor | None:
        """Return None to let SDPA compute the output, or the output [batch, query, head, dim]."""


def laser_attention(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Tensor, None]:
    """SDPA attention that lets an attached hook see (or replace) the computation."""
    hook = getattr(module, _HOOK_ATTR, None)
    if hook is not None:
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        output = hook(module, query, key, value, attention_mask, scale, **kwargs)
        if output is not None:
            return output, None
    return sdpa_attention_forward(
        module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
    )


AttentionInterface.register(ATTENTION_NAME, laser_attention)
AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)


def last_row_probs(
    query: Tensor, key: Tensor, attention_mask: Tensor | None, scaling: float
) -> Tensor:
    """Softmax attention of the last query position over all keys, per head, in float32.

    Args:
        query: [batch, head, q_len, dim] (after rotary).
        key: [batch, kv_head, k_len, dim]; kv heads are repeated for grouped-query attention.
        attention_mask: None, boolean (True = attend) or additive float, [batch, 1, q_len, k_len].
        scaling: Score scale (1 / sqrt(dim) for these models).

    Returns:
        [batch, head, k_len] probabilities.
    """
    n_heads, n_kv = query.shape[1], key.shape[1]
    keys = key.float().repeat_interleave(n_heads // n_kv, dim=1)  # [batch, head, k_len, dim]
    q_last = query[:, :, -1:, :].float()  # [batch, head, 1, dim]
    scores = (q_last @ keys.transpose(-1, -2)) * scaling  # [batch, head, 1, k_len]
    if attention_mask is not None:
        mask = attention_mask[:, :, -1:, : keys.shape[2]]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.float()
    return torch.softmax(scores, dim=-1)[:, :, 0, :]


class AttentionRecorder:
    """Hook that keeps, per layer, the prefill's last-row attention over the visual keys.

    Only the first call of each layer (the prefill, or the rest of a prompt whose prefix is
    cached) is kept; the decoding steps that follow in `generate` are ignored.
    """

    def __init__(self, visual_masks: Tensor) -> None:
        """visual_masks: [batch, seq] booleans marking image-token positions of each row (of the
        whole prompt, a cached prefix included)."""
        self.visual_masks = visual_masks
        self.rows: dict[int, Tensor] = {}

    def __call__(
        self,
        module: nn.Module,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attention_mask: Tensor | None,
        scaling: float,
        **kwargs: Any,
    ) -> None:
        layer: int = getattr(module, "layer_idx")  # noqa: B009 (set by transformers)
        if layer in self.rows:
            return None
        probs = last_row_probs(query, key, attention_mask, scaling)  # [batch, head, k_len]
        per_row = [probs[b][:, self.visual_masks[b]] for b in range(probs.shape[0])]
        self.rows[layer] = torch.stack(per_row).cpu()  # [batch, head, patch]
        return None

    def stacked(self, n_layers: int) -> Tensor:
        """[batch, layer, head, patch] float32; raises if a layer was never seen."""
        missing = [layer for layer in range(n_layers) if layer not in self.rows]
        if missing:
            raise RuntimeError(f"no attention captured for layers {missing}")
        return torch.stack([self.rows[layer] for layer in range(n_layers)], dim=1)


@contextmanager
def attach(attention_modules: Sequence[nn.Module], hook: AttentionHook) -> Iterator[None]:
    """Attach `hook` to each attention module for the duration of the block; always detached."""
    try:
        for module in attention_modules:
            setattr(module, _HOOK_ATTR, hook)
        yield
    finally:
        for module in attention_modules:
            if hasattr(module, _HOOK_ATTR):
                delattr(module, _HOOK_ATTR)
