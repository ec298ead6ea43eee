"""LASER: layer-adaptive attention-guided visual localization and decoding enhancement.

vlm = load_model()                                   # the embedded model; or a hub id / folder
result = explain(vlm, "photo.jpg", "What colour is the mug?")
print(result.answer, result.layer)
run_method(vlm, "photo.jpg", "What colour is the mug?", "vicrop").answer
"""

from laser_core.baselines import vcd_logits
from laser_core.clvs import ClvsResult, run_clvs
from laser_core.config import LaserConfig
from laser_core.contrast import vat_logits
from laser_core.crop import box_mass_share, crop_box, crop_size
from laser_core.decode import Candidate, DecodeStep
from laser_core.layers import head_vaq, select_layer, vaq
from laser_core.loading import EMBEDDED_MODEL, HUB_MODELS, VLM, ModelLoadError, load_model
from laser_core.maps import (
    all_layer_maps,
    contrastive_attention,
    layer_maps,
    relative_attention,
)
from laser_core.mask import mask_cells, top_cells
from laser_core.methods import METHODS, explains, run_method, run_methods
from laser_core.pipeline import STAGES, explain, refocus
from laser_core.result import LaserResult, MethodResult

__all__ = [
    "EMBEDDED_MODEL",
    "HUB_MODELS",
    "METHODS",
    "VLM",
    "Candidate",
    "ClvsResult",
    "DecodeStep",
    "LaserConfig",
    "LaserResult",
    "MethodResult",
    "STAGES",
    "ModelLoadError",
    "all_layer_maps",
    "box_mass_share",
    "contrastive_attention",
    "crop_box",
    "crop_size",
    "explain",
    "explains",
    "head_vaq",
    "layer_maps",
    "load_model",
    "mask_cells",
    "relative_attention",
    "refocus",
    "run_clvs",
    "run_method",
    "run_methods",
    "select_layer",
    "top_cells",
    "vaq",
    "vat_logits",
    "vcd_logits",
]
