"""CLVS's hooks: the smoother that rewrites the generating token's attention row, layer by layer.

Three kinds of hooks, all attached in `clvs_hooks` and removed in its `finally`:

- `ClvsSmoother` on every text attention module, through the registered attention function
  (`capture.attach`): it sees q and k after rotary, recomputes the row, and returns the output
  `row @ V` for that position.
- A forward pre-hook on the language model's rotary embedding, which sees the position ids the
  model really uses (3-D for Qwen's mRoPE): unified positions re-rotate the already-rotated keys
  by the position CHANGE with the model's own rotary module and `apply_rotary_pos_emb`.
- A forward hook on every decoder layer for the uncertainty check.

Only the attention ROW of the token being generated changes (the prefill's last position, then
each decoding step's single query); the other prefill rows keep SDPA's output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from laser_core.capture import attach, last_row_probs
from laser_core.clvs.kernels import (
    init_memory,
    normalised_topk_entropy,
    smooth_row,
    smoothing_stops,
    unified_key_shift,
    update_memory,
)
from laser_core.config import LaserConfig
from laser_core.loading import VLM


@dataclass(frozen=True)
class ClvsSettings:
    """CLVS knobs with every family default resolved (see `LaserConfig.clvs_*`)."""

    lam: float  # weight of a layer's own visual attention, [0, 1]
    gamma: float  # memory decay, [0, 1]
    delta: float  # stop threshold on the normalised top-k entropy, [0, 1]
    check_from: int  # first layer of the uncertainty check
    top_logits: int  # k of the top-k entropy
    unified_positions: bool  # layer 0 sees all image tokens at one position id
    early_stop: bool  # stop smoothing when the check fires


def clvs_settings(config: LaserConfig, n_layers: int) -> ClvsSettings:
    """Settings from a config whose `clvs_gamma` was resolved (`stages.resolve_config`)."""
    if config.clvs_gamma is None:
        raise ValueError("clvs_gamma is unresolved: pass the config through resolve_config")
    check_from = n_layers // 2 + 1 if config.clvs_check_from is None else config.clvs_check_from
    return ClvsSettings(
        config.clvs_lambda,
        config.clvs_gamma,
        config.clvs_delta,
        check_from,
        config.clvs_top_logits,
        config.clvs_unified_positions,
        config.clvs_early_stop,
    )


class _Step:
    """Per-layer records of one generating forward."""

    def __init__(self, n_layers: int) -> None:
        self.before: list[Tensor | None] = [None] * n_layers  # [head, patch]
        self.after: list[Tensor | None] = [None] * n_layers
        self.memory: list[Tensor | None] = [None] * n_layers  # [patch]
        self.smoothed = np.zeros(n_layers, bool)  # the row was changed
        self.uncertainty = np.full(n_layers, np.nan, np.float32)
        self.stop_layer: int | None = None


class ClvsSmoother:
    """The CLVS hook: smooths the generating token's row, layer by layer, step by step.

    One instance serves one prompt (batch of 1) through a whole `generate` call. A generating
    forward starts at layer 0 (memory reset, smoothing active) and the uncertainty check may
    switch smoothing off for its remaining layers.
    """

    def __init__(
        self,
        settings: ClvsSettings,
        visual: Tensor,
        n_layers: int,
        *,
        rotary: nn.Module,
        lm_head: nn.Module,
    ) -> None:
        """visual: [seq] bool, image-token positions of the prompt."""
        self.settings = settings
        self.visual = visual.cpu()
        self.n_layers = n_layers
        self.rotary, self.lm_head = rotary, lm_head
        self.steps: list[_Step] = []
        self._positions: Tensor | None = None  # the prompt's position ids, as the model has them
        self._key_rotation: tuple[Tensor, Tensor] | None = None  # cos, sin of the key shift
        self._memory: Tensor | None = None
        self._active = True
        self._visual_cache: Tensor | None = None  # [key] mask of the current step

    # --- hooks ------------------------------------------------------------------------------
    def see_positions(self, module: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        """Forward pre-hook of the rotary embedding: keep the prompt's position ids."""
        positions = kwargs.get("position_ids", args[1] if len(args) > 1 else None)
        if self._positions is None and positions is not None and positions.shape[-1] > 1:
            self._positions = positions.detach()

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
        if query.shape[0] != 1:
            raise ValueError(f"CLVS runs one prompt at a time, got a batch of {query.shape[0]}")
        layer = int(cast(int, module.layer_idx))
        if layer == 0:
            self.steps.append(_Step(self.n_layers))
            self._active, self._memory = True, None
        step = self.steps[-1]
        visual = self._visual_keys(key.shape[2], key.device)
        probs = last_row_probs(query, key, attention_mask, scaling)[0]  # [head, key]
        a_vis = probs[:, visual]  # [head, patch]
        row: Tensor | None = None
        if layer == 0:
            if self.settings.unified_positions:
                row = self._unified_row(module, query, key, attention_mask, scaling)
            self._memory = init_memory((probs if row is None else row)[:, visual])
            step.memory[0] = self._memory
        elif self._active and self._memory is not None:
            step.memory[layer] = self._memory
            row = smooth_row(probs, self._memory, self.settings.lam, visual=visual)
            self._memory = update_memory(self._memory, a_vis, self.settings.gamma)
        step.before[layer] = a_vis  # kept on the device; copied out once, in `trace`
        step.after[layer] = a_vis if row is None else row[:, visual]
        step.smoothed[layer] = row is not None
        if row is None:
            return None  # SDPA computes the output as usual
        return self._output(module, query, key, value, attention_mask, scaling, row, **kwargs)

    def after_layer(self, layer: int, module: nn.Module, args: tuple, output: Any) -> None:
        """Forward hook of decoder layer `layer`: the uncertainty check (Eq. 8)."""
        settings = self.settings
        if layer < settings.check_from or (settings.early_stop and not self._active):
            return
        hidden = output[0] if isinstance(output, tuple) else output  # [batch, query, hidden]
        # The unembedding matrix on the raw hidden state, WITHOUT the final norm: the paper's
        # "multiply the representation by the unembedding matrix", as the authors' code does.
        logits = self.lm_head(hidden[:, -1:, :])[0, -1]  # [vocab]
        uncertainty = float(normalised_topk_entropy(logits, settings.top_logits))
        step = self.steps[-1]
        step.uncertainty[layer] = uncertainty
        if settings.early_stop and smoothing_stops(uncertainty, settings.delta):
            self._active = False
            step.stop_layer = layer

    # --- pieces -----------------------------------------------------------------------------
    def _visual_keys(self, n_keys: int, device: torch.device) -> Tensor:
        """[key] bool: the prompt's image tokens; generated tokens (cached keys) are text."""
        cached = self._visual_cache
        if cached is None or cached.shape[0] != n_keys or cached.device != device:
            visual = torch.zeros(n_keys, dtype=torch.bool)
            visual[: self.visual.shape[0]] = self.visual
            self._visual_cache = cached = visual.to(device)
        return cached

    def _unified_row(
        self,
        module: nn.Module,
        query: Tensor,
        key: Tensor,
        attention_mask: Tensor | None,
        scaling: float,
    ) -> Tensor:
        """[head, key] row of layer 0 with every image token at one position id (Eq. 2)."""
        cos, sin = self._shift_rotation(key)
        n_prompt = cos.shape[1]
        prompt_keys = key[:, :, :n_prompt].float()
        apply_rotary = _rotary_function(module)
        _, moved = apply_rotary(prompt_keys, prompt_keys, cos, sin)
        keys = torch.cat([moved, key[:, :, n_prompt:].float()], dim=2)  # float32 throughout
        return last_row_probs(query, keys, attention_mask, scaling)[0]

    def _shift_rotation(self, key: Tensor) -> tuple[Tensor, Tensor]:
        """cos, sin [1, prompt, dim] rotating each prompt key by its unified position change."""
        if self._key_rotation is None:
            if self._positions is None:
                raise RuntimeError("the rotary embedding never saw the prompt's position ids")
            rope_type = str(getattr(self.rotary, "rope_type", "default"))
            if "dynamic" in rope_type or rope_type == "longrope":
                # Their frequencies depend on the longest position seen: calling the module at
                # small position changes would reset them for the rest of the forward.
                raise NotImplementedError(
                    f"unified positions do not support {rope_type!r} RoPE; "
                    "set clvs_unified_positions=False"
                )
            positions = self._positions  # [batch=1, seq] or [3, batch=1, seq]
            shift = unified_key_shift(
                positions.reshape(-1, positions.shape[-1]).cpu(), self.visual
            )  # [component, seq]
            shift = shift.reshape(positions.shape).to(positions.device)
            # The model's own rotary module (mRoPE sections included) at the position CHANGE;
            # `forward` directly, so our own pre-hook does not see this call.
            cos, sin = self.rotary.forward(key.float(), shift)
            scale = float(getattr(self.rotary, "attention_scaling", 1.0))  # cos/sin carry it
            self._key_rotation = (cos.float() / scale, sin.float() / scale)
        return self._key_rotation

    def _output(
        self,
        module: nn.Module,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attention_mask: Tensor | None,
        scaling: float,
        row: Tensor,
        **kwargs: Any,
    ) -> Tensor:
        """Attention output [batch, query, head, dim] with the last row from `row` @ V."""
        n_heads, n_kv = query.shape[1], value.shape[1]
        values = value[0].float().repeat_interleave(n_heads // n_kv, dim=0)  # [head, key, dim]
        last = torch.einsum("hk,hkd->hd", row, values).to(value.dtype)  # [head, dim]
        if query.shape[2] == 1:
            return last[None, None]
        output, _ = sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=0.0, scaling=scaling, **kwargs
        )
        output = output.clone()
        output[:, -1] = last
        return output

    # --- result -----------------------------------------------------------------------------
    def trace(self, n_heads: int, n_patches: int, head_steps: int) -> dict[str, Any]:
        """Stacked numpy records: head means [T, L, P], heads [T', L, H, P], memory, checks."""
        if not self.steps:
            raise RuntimeError("no generating forward reached the CLVS hooks")
        nan = torch.full((n_heads, n_patches), float("nan"))

        def stacked(records: list[list[Tensor | None]], empty: Tensor) -> Tensor:
            return torch.stack(
                [torch.stack([empty if r is None else r.cpu() for r in rs]) for rs in records]
            ).float()

        before = stacked([s.before for s in self.steps], nan)  # [T, L, H, P]
        after = stacked([s.after for s in self.steps], nan)
        memory = stacked([s.memory for s in self.steps], nan[0])  # [T, L, P]
        return {
            "attention_before": before.mean(2).numpy(),
            "attention_after": after.mean(2).numpy(),
            "head_attention_before": before[:head_steps].numpy(),
            "head_attention_after": after[:head_steps].numpy(),
            "memory": memory.numpy(),
            "smoothed": np.stack([s.smoothed for s in self.steps]),
            "uncertainty": np.stack([s.uncertainty for s in self.steps]),
            "stop_layers": tuple(s.stop_layer for s in self.steps),
        }


def _rotary_function(module: nn.Module) -> Any:
    """The attention module's own `apply_rotary_pos_emb` (from its modeling file)."""
    function = getattr(sys.modules[type(module).__module__], "apply_rotary_pos_emb", None)
    if function is None:
        raise RuntimeError(
            f"{type(module).__module__} has no apply_rotary_pos_emb: CLVS's "
            "unified positions do not know this architecture's rotary embedding"
        )
    return function


@contextmanager
def clvs_hooks(vlm: VLM, smoother: ClvsSmoother) -> Iterator[None]:
    """Attach the smoother (attention), the position pre-hook and the layer checks; always
    removed on exit, also after an exception."""
    adapter = vlm.adapter
    handles: list[Any] = []
    try:
        handles.append(
            smoother.rotary.register_forward_pre_hook(smoother.see_positions, with_kwargs=True)
        )
        for layer, module in enumerate(adapter.decoder_layers()):
            handles.append(module.register_forward_hook(partial(smoother.after_layer, layer)))
        with attach(adapter.attention_modules(), smoother):
            yield
    finally:
        for handle in handles:
            handle.remove()


def make_smoother(vlm: VLM, visual: Tensor, config: LaserConfig) -> ClvsSmoother:
    """A smoother for one prompt (`visual`: [seq] bool) of this model, settings from `config`."""
    adapter = vlm.adapter
    language_model = adapter.language_model()
    return ClvsSmoother(
        clvs_settings(config, adapter.n_layers),
        visual,
        adapter.n_layers,
        rotary=cast(nn.Module, language_model.rotary_emb),
        lm_head=vlm.model.get_output_embeddings(),
    )
