"""Visual Activation by Query (VAQ) and the choice of layer (LASER Eq. 4-6).

A head's VAQ is the L2 norm of its contrastive map: how much the question moved that head's
attention over the image. A layer's VAQ is the mean over its `k_heads` most moved heads (only a
few heads per layer look at the image at all). The layer with the largest VAQ, l*, is where the
question most changes where the model looks; its contrastive map localises the evidence.

Pure functions: tensors in, new tensors out.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def vaq(a_con: Tensor, k_heads: int) -> tuple[Tensor, Tensor]:
    """Layer-wise VAQ over the top heads (Eq. 4-5, at the prefill step only).

    Args:
        a_con: [layer, head, patch] contrastive attention.
        k_heads: Heads kept per layer (>= 1); capped at the number of heads.

    Returns:
        layer_scores: [layer] mean VAQ of the top heads.
        top_heads: [layer, k] indices of those heads, largest VAQ first (ties: lower index first).
    """
    if k_heads < 1:
        raise ValueError(f"k_heads must be >= 1, got {k_heads}")
    head_scores = head_vaq(a_con)  # [layer, head]
    k = min(k_heads, head_scores.shape[1])
    # A stable descending sort makes ties deterministic: the lower head index wins.
    order = torch.sort(head_scores, dim=1, descending=True, stable=True).indices
    top_heads = order[:, :k]  # [layer, k]
    layer_scores = torch.gather(head_scores, 1, top_heads).mean(dim=1)  # [layer]
    return layer_scores, top_heads


def head_vaq(a_con: Tensor) -> Tensor:
    """VAQ of every head, `||A_con[l, h]||_2` (Eq. 4). Returns [layer, head]."""
    return torch.linalg.vector_norm(a_con, ord=2, dim=-1)


def select_layer(layer_scores: Tensor, allowed: Sequence[int] | None = None) -> int:
    """l* = argmax of the layer scores over the allowed layers (ties: the shallower layer).

    Args:
        layer_scores: [layer] VAQ per layer.
        allowed: Layer indices to choose from; None = all.

    Returns:
        The chosen layer index.
    """
    n_layers = layer_scores.shape[0]
    candidates = list(range(n_layers)) if allowed is None else sorted(set(allowed))
    if not candidates:
        raise ValueError("allowed layers must not be empty")
    bad = [layer for layer in candidates if not 0 <= layer < n_layers]
    if bad:
        raise ValueError(f"allowed layers {bad} are outside [0, {n_layers - 1}]")
    scores = layer_scores[candidates]
    return candidates[int(torch.argmax(scores))]  # argmax returns the first maximum
