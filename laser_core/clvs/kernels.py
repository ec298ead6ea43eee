"""CLVS kernels: the pure maths of cross-layer vision smoothing (clvs-paper.txt, Sec. 3).

CLVS works on ONE attention row per layer: the row of the token being generated, over all keys
(text and image), per head. The hooks (`laser_core.clvs.hooks`) feed these functions that row:

    layer 0          M = max_h a_vis                                         (Eq. 4)
                     with every image token at one position id               (Eq. 2)
    layer l >= 1     a_vis <- lam * a_vis + (1 - lam) * M   (M on every head) (Eq. 5)
    while active     row <- row / sum(row)                                   (Eq. 6)
                     M <- gamma * M + (1 - gamma) * max_h(original a_vis)    (Eq. 7)
    stop             from layer L // 2 + 1 on: normalised entropy of the top-k logits of the
                     layer's hidden state; once below delta, no smoothing in later layers (Eq. 8)

Everything here is tensors in, new tensors out; nothing is edited in place.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def init_memory(a_vis: Tensor) -> Tensor:
    """Vision memory from one layer's visual attention: the max over heads (Eq. 4).

    Args:
        a_vis: [head, patch] attention of the generating token over the image tokens.

    Returns:
        [patch]: for every patch, the strongest attention any head gives it.
    """
    return a_vis.max(dim=-2).values


def smooth_row(row: Tensor, memory: Tensor, lam: float, *, visual: Tensor) -> Tensor:
    """Blend a row's visual part with the vision memory, then renormalise (Eq. 5-6).

    Args:
        row: [head, key] softmax attention of the generating token over ALL keys (sums to 1).
        memory: [patch] vision memory, patch = visual.sum(); the same for every head.
        lam: Weight of the layer's own attention, in [0, 1] (1 = no smoothing).
        visual: [key] bool, True at image-token keys.

    Returns:
        [head, key]: visual part `lam * a_vis + (1 - lam) * memory`, text part unchanged, then the
        whole row divided by its sum so it sums to 1 again (a plain division, not a softmax,
        which would flatten the distribution).
    """
    smoothed = row.clone()
    smoothed[..., visual] = lam * row[..., visual] + (1.0 - lam) * memory
    return smoothed / smoothed.sum(dim=-1, keepdim=True)


def update_memory(memory: Tensor, a_vis_original: Tensor, gamma: float) -> Tensor:
    """Carry the memory to the next layer (Eq. 7).

    Args:
        memory: [patch] memory used at this layer.
        a_vis_original: [head, patch] this layer's visual attention BEFORE smoothing.
        gamma: Decay, in [0, 1]; larger keeps older layers longer (a soft memory window).

    Returns:
        [patch] `gamma * memory + (1 - gamma) * max_h(a_vis_original)`.
    """
    return gamma * memory + (1.0 - gamma) * init_memory(a_vis_original)


def normalised_topk_entropy(logits: Tensor, k: int) -> Tensor:
    """Uncertainty of a next-token guess from its k largest logits (Eq. 8, top-k form).

    Args:
        logits: [..., vocab] raw logits (e.g. the LM head applied to a layer's hidden state).
        k: How many of the largest logits to keep, >= 2 (capped at the vocabulary size).

    Returns:
        [...] entropy of softmax(top-k logits) divided by ln k: 0 = one token takes all the mass,
        1 = the k candidates are equally likely.
    """
    k = min(k, logits.shape[-1])
    if k < 2:
        raise ValueError(f"the entropy check needs k >= 2 logits, got {k}")
    top = torch.topk(logits.float(), k, dim=-1).values
    entropy = torch.special.entr(torch.softmax(top, dim=-1)).sum(dim=-1)  # -p ln p, 0 at p = 0
    return entropy / math.log(k)


def smoothing_stops(uncertainty: float, delta: float) -> bool:
    """The stop rule at one checked layer: the model is sure enough (uncertainty < delta)."""
    return uncertainty < delta


def first_stop_layer(uncertainty: np.ndarray, delta: float, check_from: int) -> int | None:
    """The layer at which smoothing stops, from a per-layer uncertainty sequence.

    Args:
        uncertainty: [layer] normalised top-k entropy; NaN where it was not computed.
        delta: Threshold in [0, 1].
        check_from: First layer that is checked.

    Returns:
        The first layer >= check_from whose uncertainty is below delta (smoothing still applies
        at that layer and not after it), or None if no layer qualifies.
    """
    for layer in range(check_from, len(uncertainty)):
        value = float(uncertainty[layer])
        if not math.isnan(value) and smoothing_stops(value, delta):
            return layer
    return None


def unified_key_shift(positions: Tensor, visual: Tensor) -> Tensor:
    """Position change that puts every image token at ONE position id, seen from the query.

    The unified layout (Eq. 2): tokens before the image keep their ids, every image token takes
    the id of the first image token `s`, and the text after it is shifted back so it starts at
    `s + 1`. RoPE is relative (a query at p and a key at j only interact through p - j), so the
    query, which comes after the image, can stay where it is and each key moves by
    `(new_j - old_j) - (new_query - old_query)`: keys after the image do not move, image keys
    land on the last image slot, keys before the image move forward by the shift.

    Args:
        positions: [component, key] the model's position ids of the prompt (1 component for
            1-D RoPE, 3 for Qwen's mRoPE: time, height, width).
        visual: [key] bool, True at image tokens; one contiguous block, followed by text.

    Returns:
        [component, key] integer position change for every key (0 after the image).
    """
    index = torch.nonzero(visual).flatten()
    if index.numel() == 0:
        raise ValueError("the prompt has no image tokens")
    first, last = int(index[0]), int(index[-1])
    if index.numel() != last - first + 1:
        raise ValueError("the image tokens are not one contiguous block")
    if last + 1 >= positions.shape[-1]:
        raise ValueError("the image is the end of the prompt: no text token after it")
    start = positions[:, first : first + 1]  # [component, 1]
    shift = positions[:, last + 1 : last + 2] - (start + 1)  # how far later text moves back
    delta = torch.zeros_like(positions)
    delta[:, :first] = shift
    delta[:, first : last + 1] = start - positions[:, first : last + 1] + shift
    return delta
