"""LLaVA-1.5 (llava-hf checkpoints) and the embedded model, which shares the architecture.

    LlavaForConditionalGeneration
      .model.vision_tower            CLIP ViT (sdpa)
      .model.multi_modal_projector   MLP
      .model.language_model          LlamaModel: .layers[i].self_attn  <- hooked
      .lm_head

The vision tower sees a fixed square (336 px, 14-px patches: a 24 x 24 grid, row-major). The
llava-hf processor resizes the shortest side and then CENTRE-CROPS, which would hide the borders
of a non-square image. As original LLaVA-1.5 does ("pad" aspect mode), we first pad the image to a
square with the processor's mean colour, centred; grid cells are then mapped back through that
padding (cells over the padding have no footprint in the original image).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image
from torch import Tensor
from transformers import BatchFeature

from laser_core.adapters.base import ImageGeometry, VLMAdapter, grid_cell_boxes


def pad_to_square(image: Image.Image, color: tuple[int, int, int]) -> Image.Image:
    """The image centred on a square canvas of its longer side, filled with `color`."""
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image
    canvas = Image.new("RGB", (side, side), color)
    canvas.paste(image, ((side - width) // 2, (side - height) // 2))
    return canvas


class LlavaAdapter(VLMAdapter):
    model_types = ("llava",)

    @property
    def patch_size(self) -> int:
        return int(self.model.config.vision_config.patch_size)

    @property
    def input_side(self) -> int:
        return int(self.model.config.vision_config.image_size)

    @property
    def vicrop_base_side(self) -> int:
        return self.input_side  # 336 for LLaVA-1.5

    def image_features(self, inputs: Mapping[str, Any], indices: Sequence[int]) -> list[Tensor]:
        pixels = inputs["pixel_values"][list(indices)]  # one [3, side, side] per image
        return list(self.model.model.get_image_features(pixel_values=pixels).pooler_output)

    def model_image(self, image: Image.Image) -> Image.Image:
        return pad_to_square(image, self.mean_color)

    def geometry(self, image: Image.Image, inputs: BatchFeature, index: int = 0) -> ImageGeometry:
        width, height = image.size  # every image gets the same fixed grid: `index` is not needed
        side = max(width, height)
        left, top = (side - width) // 2, (side - height) // 2
        n = self.input_side // self.patch_size
        covered = (-left, -top, side - left, side - top)  # the padded square, in image pixels
        boxes = grid_cell_boxes((n, n), covered, image.size)
        return ImageGeometry((width, height), (n, n), boxes, covered)
