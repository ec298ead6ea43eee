"""Logit arithmetic of the two contrastive decoders (pure functions).

- VAT (LASER Eq. 10-11): `VAT = z+ - z-`, `s = z+ + alpha * VAT`. z+ comes from the crop I+, z- from
  the same crop with the evidence masked (I-). Tokens whose logit falls when the evidence is
  removed are promoted; tokens that only follow language priors are not.
- VCD (Leng et al., 2024): `s = (1 + alpha) z - alpha z_noise`, keeping only tokens that are
  plausible under the clean image (`p >= beta * p_max`).
- The forward-diffusion noise VCD feeds the model instead of the image.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def vat_logits(z_plus: Tensor, z_minus: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """Visual Activation of Tokens and the enhanced logits.

    Args:
        z_plus: [..., vocab] logits on the crop.
        z_minus: Same shape, on the masked crop.
        alpha: VAT weight (>= 0).

    Returns:
        vat: z_plus - z_minus.
        s: z_plus + alpha * vat.
    """
    vat = z_plus - z_minus
    return vat, z_plus + alpha * vat


def vcd_logits(z: Tensor, z_noise: Tensor, *, alpha: float, beta: float) -> Tensor:
    """VCD's contrast with an adaptive plausibility cut (implausible tokens get -inf).

    Args:
        z: [..., vocab] logits on the clean image.
        z_noise: Same shape, on the noised image.
        alpha: Contrast strength (>= 0).
        beta: Keep tokens with p(z) >= beta * max p(z), in [0, 1].
    """
    s = (1 + alpha) * z - alpha * z_noise
    if beta <= 0:
        return s
    # p >= beta * p_max  <=>  z >= z_max + log(beta), in logit space to avoid underflow.
    cutoff = z.max(dim=-1, keepdim=True).values + math.log(beta)
    return s.masked_fill(z < cutoff, float("-inf"))


def diffusion_noise(
    pixels: Tensor, *, step: int, n_steps: int, generator: torch.Generator
) -> Tensor:
    """Forward diffusion of normalised pixels to `step` (sigmoid betas from 1e-5 to 5e-3).

    `x_t = sqrt(abar_t) x + sqrt(1 - abar_t) eps`, the schedule of the VCD reference code.
    """
    betas = torch.sigmoid(torch.linspace(-6, 6, n_steps, dtype=torch.float64)) * (5e-3 - 1e-5)
    betas = betas + 1e-5
    alpha_bar = torch.cumprod(1 - betas, dim=0)[step]
    noise = torch.randn(pixels.shape, generator=generator, dtype=torch.float32)
    noisy = alpha_bar.sqrt() * pixels.float() + (1 - alpha_bar).sqrt() * noise.to(pixels.device)
    return noisy.to(pixels.dtype)
