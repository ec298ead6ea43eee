"""The methods LASER is compared with, as their authors published them.

    vicrop.py   ViCrop (Zhang et al., 2025): relative attention at a fixed layer -> crop -> answer
    vcd.py      VCD (Leng et al., 2024): contrast with a diffusion-noised image while decoding

Each module holds its method's maths (pure functions) and its `run_*` driver; `methods.py` lists
them beside LASER, its ablations and CLVS under one `run_method`.
"""

from laser_core.baselines.vcd import diffusion_noise, run_vcd, vcd_logits
from laser_core.baselines.vicrop import run_vicrop, vicrop_map

__all__ = ["diffusion_noise", "run_vcd", "run_vicrop", "vcd_logits", "vicrop_map"]
