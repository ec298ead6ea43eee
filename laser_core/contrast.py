"""Stage 4's logit arithmetic: VAT, visual activation of tokens (LASER Eq. 10-11; pure).

`VAT = z+ - z-`, `s = z+ + alpha * VAT`. z+ comes from the crop I+, z- from the same crop with
the evidence masked (I-). Tokens whose logit falls when the evidence is removed are promoted;
tokens that only follow language priors are not. (VCD's contrast is in `baselines.vcd`.)
"""

from __future__ import annotations

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
