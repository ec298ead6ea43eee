"""Attention maps: raw, relative (ViCrop) and contrastive (LASER Eq. 3).

All three start from the attention that the LAST prompt position (the one that predicts the first
answer token) pays to each visual token, for every layer and head: `[layer, head, patch]`.

- raw: what the model looks at. It is dominated by "sink" patches that draw attention whatever
  the question is.
- relative (Zhang et al., 2025): raw divided by the attention under a generic prompt ("describe
  the image"), which cancels part of the sinks.
- contrastive (LASER): `relu(a[q] - a[none])`, the attention the question itself adds over the
  same prompt without the question. What remains is query-driven.

These are pure functions: tensors in, new tensors out.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

HeadChoice = Literal["mean", "top"]


def contrastive_attention(a_query: Tensor, a_free: Tensor) -> Tensor:
    """Query-induced attention, `relu(a[q] - a[none])` (Eq. 3).

    Args:
        a_query: [layer, head, patch] attention with the question in the prompt.
        a_free: Same shape, from the same prompt with the question removed.

    Returns:
        [layer, head, patch], >= 0.
    """
    if a_query.shape != a_free.shape:
        raise ValueError(f"shape mismatch: {tuple(a_query.shape)} vs {tuple(a_free.shape)}")
    return torch.relu(a_query - a_free)


def relative_attention(a_query: Tensor, a_generic: Tensor, eps: float = 1e-6) -> Tensor:
    """ViCrop's relative attention: `a[q] / (a[generic] + eps)`.

    Works on any matching shapes; the app divides head-means ([layer, patch]), as METHOD.md says.

    Returns:
        Same shape; values > 1 mean the question draws more attention there than a generic prompt.
    """
    if a_query.shape != a_generic.shape:
        raise ValueError(f"shape mismatch: {tuple(a_query.shape)} vs {tuple(a_generic.shape)}")
    return a_query / (a_generic + eps)


def head_mean_maps(attn: Tensor, grid: tuple[int, int]) -> Tensor:
    """Mean over heads, laid out on the visual grid.

    Args:
        attn: [layer, head, patch] with patch == rows * cols, row-major.
        grid: (rows, cols).

    Returns:
        [layer, rows, cols].
    """
    return attn.mean(dim=1).reshape(attn.shape[0], *grid)


def top_head_maps(a_con: Tensor, top_heads: Tensor, grid: tuple[int, int]) -> Tensor:
    """Contrastive map of every layer: mean of `A_con` over that layer's top heads (Eq. 6).

    Args:
        a_con: [layer, head, patch] contrastive attention.
        top_heads: [layer, k] head indices per layer (from `vaq`).
        grid: (rows, cols).

    Returns:
        [layer, rows, cols].
    """
    index = top_heads.unsqueeze(-1).expand(-1, -1, a_con.shape[-1])  # [layer, k, patch]
    picked = torch.gather(a_con, 1, index)  # [layer, k, patch]
    return picked.mean(dim=1).reshape(a_con.shape[0], *grid)


def all_layer_maps(
    a_query: Tensor,
    a_free: Tensor,
    a_generic: Tensor | None,
    top_heads: Tensor,
    grid: tuple[int, int],
    *,
    eps: float = 1e-6,
) -> dict[str, Tensor]:
    """The three maps the app shows for EVERY layer, each [layer, rows, cols].

    raw = head-mean of a[q]; relative = head-mean of a[q] / (head-mean of a[generic] + eps);
    contrastive = mean of A_con over the layer's top heads. Without `a_generic` there is no
    "relative" entry.
    """
    raw = head_mean_maps(a_query, grid)
    contrastive = top_head_maps(contrastive_attention(a_query, a_free), top_heads, grid)
    maps = {"raw": raw, "contrastive": contrastive}
    if a_generic is not None:
        maps["relative"] = relative_attention(raw, head_mean_maps(a_generic, grid), eps)
    return maps


def layer_maps(
    a_query: Tensor,
    a_free: Tensor,
    a_generic: Tensor,
    grid: tuple[int, int],
    *,
    layer: int,
    heads: HeadChoice | int | list[int],
    top_heads: Tensor,
    eps: float = 1e-6,
) -> dict[str, Tensor]:
    """The three maps of one layer for a chosen set of heads (the app's head selector).

    Args:
        a_query, a_free, a_generic: [layer, head, patch].
        grid: (rows, cols).
        layer: Layer index.
        heads: "mean" (all heads), "top" (the layer's VAQ top heads), one head index, or a list.
        top_heads: [layer, k] from `vaq`.

    Returns:
        {"raw", "relative", "contrastive"}, each [rows, cols].
    """
    n_heads = a_query.shape[1]
    if heads == "mean":
        index = torch.arange(n_heads)
    elif heads == "top":
        index = top_heads[layer]
    else:
        index = torch.as_tensor([heads] if isinstance(heads, int) else heads)
        if index.numel() == 0 or int(index.min()) < 0 or int(index.max()) >= n_heads:
            raise ValueError(f"head indices must be in [0, {n_heads - 1}], got {heads!r}")
    q = a_query[layer, index]  # [k, patch]
    raw = q.mean(0)
    relative = relative_attention(raw, a_generic[layer, index].mean(0), eps)
    contrastive = contrastive_attention(q, a_free[layer, index]).mean(0)
    return {
        name: m.reshape(grid)
        for name, m in (("raw", raw), ("relative", relative), ("contrastive", contrastive))
    }
