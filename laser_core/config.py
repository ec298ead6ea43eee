"""One frozen config object holding every default of the method.

Every field below is a knob of METHOD.md; the comment says what it means and its range. Variants
are made with `dataclasses.replace(cfg, field=value)` and every result stores `asdict(cfg)`, so a
number can always be traced back to the settings that produced it.

Fields whose default depends on the checkpoint (the static layer, CLVS's gamma) are `None` here
and resolved by the model's adapter at run time; the resolved value is what results record.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

MaskFill = Literal["mean", "black", "blur"]
VatMode = Literal["always", "adaptive", "off"]
Decoding = Literal["greedy", "sample"]

DEFAULT_SUFFIX = " Answer the question using a single word or phrase."
DEFAULT_GENERIC_QUESTION = "Write a general description of the image."


@dataclass(frozen=True)
class LaserConfig:
    """Every setting of LASER, its baselines and CLVS. Validated on creation."""

    # --- prompts -------------------------------------------------------------------------------
    prompt_suffix: str = DEFAULT_SUFFIX  # appended to the question in the user turn
    generic_question: str = DEFAULT_GENERIC_QUESTION  # replaces q for ViCrop's relative attention

    # --- stage 1: contrastive attention, VAQ, layer choice ------------------------------------
    k_heads: int = 8  # heads kept per layer for VAQ (>= 1; capped at the model's head count)
    allowed_layers: tuple[int, ...] | None = None  # layers l* may be picked from; None = all
    force_layer: int | None = None  # skip the VAQ argmax and use this layer (>= 0); None = VAQ
    static_layer: int | None = None  # ViCrop / laser_static layer (>= 0); None = family default
    relative_eps: float = 1e-6  # epsilon in the relative-attention denominator (> 0)

    # --- stage 2: crop ---------------------------------------------------------------------------
    crop_ratio: float = 0.5  # crop side as a fraction of the image side, in (0, 1]
    crop_min: int = 224  # floor of the crop side in pixels (>= 1), then capped at the image side

    # --- stage 3: counterfactual --------------------------------------------------------------
    k_patches: int | float = 0.05  # masked cells: int = count (>= 1), float in (0, 1) = fraction
    mask_fill: MaskFill = "mean"  # fill of masked cells: processor mean colour, black, or blur

    # --- stage 4: VAT decoding ----------------------------------------------------------------
    alpha: float = 1.0  # VAT weight in s = z+ + alpha * (z+ - z-), >= 0
    vat_mode: VatMode = "adaptive"  # always | adaptive (only when l* > static layer) | off
    decoding: Decoding = "greedy"  # greedy argmax, or sampling from softmax(s / temperature)
    temperature: float = 1.0  # sampling temperature (> 0), used when decoding == "sample"
    seed: int = 0  # seed of the sampler and of VCD's noise (>= 0)
    max_new_tokens: int = 16  # answer length cap in tokens (1..512)
    top_candidates: int = 5  # candidates kept per decoding step for the VAT table (1..50)

    # --- model input -------------------------------------------------------------------------
    max_visual_tokens: int = 1280  # any-resolution models: at most this many merged tokens (>= 4)
    min_visual_tokens: int = 4  # any-resolution models: at least this many merged tokens (>= 1)

    # --- VCD baseline (Leng et al., 2024) -------------------------------------------------------
    vcd_alpha: float = 1.0  # s = (1 + a) z - a z_noise, >= 0
    vcd_beta: float = 0.1  # plausibility cut: keep tokens with p >= beta * p_max, in [0, 1]
    vcd_noise_step: int = 500  # forward-diffusion step of the noised image, in [0, vcd_steps)
    vcd_steps: int = 1000  # length of the diffusion schedule (>= 1)

    # --- CLVS (cross-layer vision smoothing) --------------------------------------------------
    clvs_lambda: float = 0.8  # weight of a layer's own attention in Eq. 5, in [0, 1] (every model)
    clvs_gamma: float | None = None  # memory window (Eq. 7), [0, 1]; None = 0.8 LLaVA-1.5, else 0.7
    clvs_delta: float = 0.5  # stop smoothing once normalised top-k entropy < delta, in [0, 1]
    clvs_check_from: int | None = None  # first layer of the entropy check; None = L // 2 + 1
    clvs_top_logits: int = 10  # logits in the entropy check (>= 2)
    clvs_unified_positions: bool = True  # layer 0 sees every image token at one position
    clvs_early_stop: bool = True  # stop smoothing when the entropy check fires

    def __post_init__(self) -> None:
        _check(self.k_heads >= 1, "k_heads", self.k_heads, ">= 1")
        if self.allowed_layers is not None:
            _check(
                len(self.allowed_layers) > 0,
                "allowed_layers",
                self.allowed_layers,
                "a non-empty tuple of layer indices or None",
            )
            for layer in self.allowed_layers:
                _check(
                    isinstance(layer, int) and layer >= 0,
                    "allowed_layers",
                    self.allowed_layers,
                    "layer indices >= 0",
                )
        for name in ("force_layer", "static_layer", "clvs_check_from"):
            value = getattr(self, name)
            _check(
                value is None or (isinstance(value, int) and value >= 0),
                name,
                value,
                "None or an integer >= 0",
            )
        _check(self.relative_eps > 0, "relative_eps", self.relative_eps, "> 0")
        _check(0 < self.crop_ratio <= 1, "crop_ratio", self.crop_ratio, "(0, 1]")
        _check(self.crop_min >= 1, "crop_min", self.crop_min, ">= 1")
        if isinstance(self.k_patches, bool) or not isinstance(self.k_patches, (int, float)):
            _check(False, "k_patches", self.k_patches, "an int >= 1 or a float in (0, 1)")
        elif isinstance(self.k_patches, int):
            _check(self.k_patches >= 1, "k_patches", self.k_patches, "an int >= 1")
        else:
            _check(0 < self.k_patches < 1, "k_patches", self.k_patches, "a float in (0, 1)")
        _check(
            self.mask_fill in ("mean", "black", "blur"),
            "mask_fill",
            self.mask_fill,
            "'mean', 'black' or 'blur'",
        )
        _check(math.isfinite(self.alpha) and self.alpha >= 0, "alpha", self.alpha, ">= 0")
        _check(
            self.vat_mode in ("always", "adaptive", "off"),
            "vat_mode",
            self.vat_mode,
            "'always', 'adaptive' or 'off'",
        )
        _check(
            self.decoding in ("greedy", "sample"), "decoding", self.decoding, "'greedy' or 'sample'"
        )
        _check(self.temperature > 0, "temperature", self.temperature, "> 0")
        _check(self.seed >= 0, "seed", self.seed, ">= 0")
        _check(1 <= self.max_new_tokens <= 512, "max_new_tokens", self.max_new_tokens, "1..512")
        _check(1 <= self.top_candidates <= 50, "top_candidates", self.top_candidates, "1..50")
        _check(self.min_visual_tokens >= 1, "min_visual_tokens", self.min_visual_tokens, ">= 1")
        _check(
            self.max_visual_tokens >= max(4, self.min_visual_tokens),
            "max_visual_tokens",
            self.max_visual_tokens,
            ">= 4 and >= min_visual_tokens",
        )
        _check(self.vcd_alpha >= 0, "vcd_alpha", self.vcd_alpha, ">= 0")
        _check(0 <= self.vcd_beta <= 1, "vcd_beta", self.vcd_beta, "[0, 1]")
        _check(self.vcd_steps >= 1, "vcd_steps", self.vcd_steps, ">= 1")
        _check(
            0 <= self.vcd_noise_step < self.vcd_steps,
            "vcd_noise_step",
            self.vcd_noise_step,
            f"[0, vcd_steps) = [0, {self.vcd_steps})",
        )
        _check(0 <= self.clvs_lambda <= 1, "clvs_lambda", self.clvs_lambda, "[0, 1]")
        _check(
            self.clvs_gamma is None or 0 <= self.clvs_gamma <= 1,
            "clvs_gamma",
            self.clvs_gamma,
            "None or [0, 1]",
        )
        _check(0 <= self.clvs_delta <= 1, "clvs_delta", self.clvs_delta, "[0, 1]")
        _check(self.clvs_top_logits >= 2, "clvs_top_logits", self.clvs_top_logits, ">= 2")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready copy (tuples become lists)."""
        out = asdict(self)
        if out["allowed_layers"] is not None:
            out["allowed_layers"] = list(out["allowed_layers"])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LaserConfig:
        """Inverse of `to_dict`; unknown keys raise ValueError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown LaserConfig fields: {', '.join(unknown)}")
        data = dict(data)
        if data.get("allowed_layers") is not None:
            data["allowed_layers"] = tuple(data["allowed_layers"])
        return cls(**data)


def _check(ok: bool, name: str, value: object, allowed: str) -> None:
    if not ok:
        raise ValueError(f"LaserConfig.{name} must be {allowed}, got {value!r}")
