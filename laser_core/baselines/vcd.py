"""VCD, visual contrastive decoding (Leng et al., 2024): the image against its noised copy.

Two streams decode in lockstep (one batch of two, `decode.decode`): the clean image I and
`I_noise`, the normalised pixels after forward diffusion to step 500 of 1000 (sigmoid betas from
1e-5 to 5e-3, the schedule of the authors' code). Per step

    s = (1 + alpha) z - alpha z_noise,   keeping only tokens with p(z) >= beta * max p(z)

so tokens the model would say without looking (language priors survive the noise) lose weight,
while the plausibility cut keeps the contrast from promoting nonsense.
"""

from __future__ import annotations

import math
from functools import partial

import torch
from torch import Tensor

from laser_core.decode import decode
from laser_core.passes import Passes
from laser_core.result import MethodResult
from laser_core.stages import timed


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


def run_vcd(passes: Passes) -> MethodResult:
    """Answer with VCD on the full image (no crop)."""
    timings: dict[str, float] = {}
    vlm, image, config = passes.vlm, passes.image, passes.config
    text = passes.prompts.query
    with timed(timings, "decode"):
        inputs, _ = passes.encode_pixels([text, text], [image, image])
        pixels = inputs["pixel_values"]
        half = pixels.shape[0] // 2  # LLaVA: one row per image; Qwen: the patches of both images
        generator = torch.Generator().manual_seed(config.seed)
        noise = diffusion_noise(
            pixels[half:], step=config.vcd_noise_step, n_steps=config.vcd_steps, generator=generator
        )
        noised = {**inputs, "pixel_values": torch.cat([pixels[:half], noise])}
        (noise_features,) = passes.features(noised, [1])  # the tower on the noised copy only
        model_inputs = passes.pre_encoded(inputs, [image, noise_features])
        combine = partial(_combine, alpha=config.vcd_alpha, beta=config.vcd_beta)
        decoded = decode(vlm, model_inputs, config, combine=combine)
    return MethodResult(
        "vcd", decoded.answer, None, None, None, image, decoded.steps, timings, config.to_dict()
    )


def _combine(z: Tensor, z_noise: Tensor, *, alpha: float, beta: float) -> tuple[Tensor, Tensor]:
    """(difference shown in the table, VCD's scores) for `decode`."""
    return z - z_noise, vcd_logits(z, z_noise, alpha=alpha, beta=beta)
