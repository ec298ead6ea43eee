"""CLVS: cross-layer vision smoothing of the generating token's attention (clvs-paper.txt, Sec. 3).

Language models look at the right image region for a layer or two, then let go ("advantageous
attention decay"). CLVS keeps a vision memory M and, in every layer, blends the attention the
generating token pays to the image with that memory, so focus found early persists:

    layer 0        row recomputed with all image tokens at ONE position id -> M = max_h a_vis
    layer l >= 1   a_vis <- lam a_vis + (1 - lam) M;  row /= sum(row);
    (while active) M <- gamma M + (1 - gamma) max_h(original a_vis)
    stop           from layer L // 2 + 1 on, LM head on the layer's hidden state: once the
                   normalised top-10 entropy < delta, later layers are left alone

The package, from kernels to driver:

    kernels.py   the pure maths (Eq. 2, 4-8): tensors in, new tensors out
    hooks.py     the smoother hooked into every attention module, the rotary and the layers
    run.py       `run_clvs`: `model.generate` with the KV cache under the hooks, as every method
    result.py    `ClvsResult`: the answer and the trace, as plain data
"""

from laser_core.clvs.hooks import (
    ClvsSettings,
    ClvsSmoother,
    clvs_hooks,
    clvs_settings,
    make_smoother,
)
from laser_core.clvs.result import ClvsResult, cells_in_box
from laser_core.clvs.run import run_clvs

__all__ = [
    "ClvsResult",
    "ClvsSettings",
    "ClvsSmoother",
    "cells_in_box",
    "clvs_hooks",
    "clvs_settings",
    "make_smoother",
    "run_clvs",
]
