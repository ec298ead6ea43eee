"""Qwen2-VL and Qwen2.5-VL: any-resolution images, 3-D rotary positions (mRoPE).

    Qwen2VLForConditionalGeneration / Qwen2_5_VLForConditionalGeneration
      .model.visual                  ViT with 14-px patches, 2 x 2 patch merger (sdpa)
      .model.language_model          Qwen2 decoder: .layers[i].self_attn  <- hooked
      .lm_head

The processor resizes the image (no crop) so both sides are multiples of 28 and the pixel count
is within a budget (`smart_resize`); `image_grid_thw` = (1, h, w) in 14-px patches. The image
becomes (h/2) * (w/2) contiguous `<|image_pad|>` tokens, row-major over 28-px merged blocks: token k
is block (k // (w/2), k % (w/2)). Each block maps back to the original image by the resize scale.
Our pixel budget (`LaserConfig.max_visual_tokens`) keeps a 6000 x 4000 upload from exhausting
memory; a crop is re-encoded at its own resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image
from torch import Tensor
from transformers import BatchFeature

from laser_core.adapters.base import ImageGeometry, VLMAdapter, grid_cell_boxes
from laser_core.config import LaserConfig


class Qwen2VLAdapter(VLMAdapter):
    model_types = ("qwen2_vl", "qwen2_5_vl")
    vicrop_base_side = 336  # any resolution has no native side: the ViCrop authors' default

    @property
    def merge_size(self) -> int:
        return int(self.image_processor.merge_size)

    @property
    def patch_size(self) -> int:
        return int(self.image_processor.patch_size)

    token_keys = ("input_ids", "attention_mask", "mm_token_type_ids")

    def image_features(self, inputs: Mapping[str, Any], indices: Sequence[int]) -> list[Tensor]:
        grids = inputs["image_grid_thw"]  # [image, 3]: (t, h, w) in patches
        ends = torch.cumsum(grids.prod(-1), 0).tolist()  # each image's patch rows end here
        starts = [0, *ends[:-1]]
        rows = torch.cat([inputs["pixel_values"][starts[i] : ends[i]] for i in indices])
        chosen = grids[list(indices)]
        return list(self.model.model.get_image_features(rows, chosen).pooler_output)

    def positions(self, inputs: Mapping[str, Any]) -> Tensor:
        """[3, 1, S] mRoPE positions from the model's own rope-index function."""
        return self._rope_index(inputs)[0]

    def prepare_continuation(self, inputs: Mapping[str, Any]) -> None:
        """`generate` continues a cached prefix at text positions + the model's `rope_deltas`:
        set them from the FULL prompt (they would otherwise be whatever the last call left)."""
        self.model.model.rope_deltas = self._rope_index(inputs)[1]

    def _rope_index(self, inputs: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        return self.model.model.get_rope_index(
            inputs["input_ids"],
            image_grid_thw=inputs["image_grid_thw"],
            attention_mask=inputs["attention_mask"],
            mm_token_type_ids=inputs["mm_token_type_ids"],
        )

    def images_kwargs(self, config: LaserConfig) -> dict[str, Any]:
        block = (self.patch_size * self.merge_size) ** 2  # pixels per merged visual token
        return {
            "size": {
                "shortest_edge": config.min_visual_tokens * block,
                "longest_edge": config.max_visual_tokens * block,
            }
        }

    def geometry(self, image: Image.Image, inputs: BatchFeature, index: int = 0) -> ImageGeometry:
        _, h_patches, w_patches = (int(v) for v in inputs["image_grid_thw"][index])
        grid = (h_patches // self.merge_size, w_patches // self.merge_size)
        width, height = image.size
        covered = (0.0, 0.0, float(width), float(height))  # resized, never padded or cropped
        return ImageGeometry(
            (width, height), grid, grid_cell_boxes(grid, covered, image.size), covered
        )
