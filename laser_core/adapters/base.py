"""What every model family must tell the method, and nothing more.

An adapter knows a family's prompt layout, how its processor turns an image into visual tokens,
and where each visual token sits in the ORIGINAL image. The method code never branches on model
names: it asks the adapter.

    family adapter
      .encode(texts, images)    -> BatchFeature, left-padded, one row per (text, image)
      .visual_mask(inputs)      -> [batch, seq] bool: image-token positions
      .geometry(image, inputs)  -> ImageGeometry: grid (rows, cols) + each cell's pixel box
      .attention_modules()      -> the decoder's self-attention modules (for hooks)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from transformers import BatchFeature, PreTrainedModel

from laser_core.config import LaserConfig


@dataclass(frozen=True)
class ImageGeometry:
    """Where the visual tokens of one image lie in that image.

    Attributes:
        image_size: (W, H) of the original image, in pixels.
        grid: (rows, cols) of visual tokens; token k is cell (k // cols, k % cols).
        cell_boxes: [rows, cols, 4] float, each cell's footprint (x0, y0, x1, y1) in original
            pixels, clipped to the image (cells that only cover padding have zero area).
    """

    image_size: tuple[int, int]
    grid: tuple[int, int]
    cell_boxes: np.ndarray


def grid_cell_boxes(
    grid: tuple[int, int], covered: tuple[float, float, float, float], image_size: tuple[int, int]
) -> np.ndarray:
    """Boxes of a uniform grid laid over `covered` (x0, y0, x1, y1), clipped to the image.

    `covered` is the region of original-pixel space the model input spans: the padded square for
    LLaVA (it extends past the image), the image itself for any-resolution models.
    """
    rows, cols = grid
    x0, y0, x1, y1 = covered
    xs = np.linspace(x0, x1, cols + 1)
    ys = np.linspace(y0, y1, rows + 1)
    width, height = image_size
    boxes = np.empty((rows, cols, 4), dtype=np.float64)
    boxes[..., 0] = np.clip(xs[:-1], 0, width)[None, :]
    boxes[..., 2] = np.clip(xs[1:], 0, width)[None, :]
    boxes[..., 1] = np.clip(ys[:-1], 0, height)[:, None]
    boxes[..., 3] = np.clip(ys[1:], 0, height)[:, None]
    return boxes


class VLMAdapter(ABC):
    """Base class of the per-family adapters."""

    model_types: ClassVar[tuple[str, ...]]  # HF config.model_type values served
    reference_static_layer: ClassVar[int]  # METHOD.md's static layer for the family's checkpoints
    reference_clvs_lambda: ClassVar[float]  # METHOD.md's CLVS lambda for those checkpoints

    def __init__(self, model: PreTrainedModel, processor: Any) -> None:
        self.model = model
        self.processor = processor

    # --- model structure -------------------------------------------------------------------
    @property
    def text_config(self) -> Any:
        return self.model.config.text_config

    @property
    def n_layers(self) -> int:
        return int(self.text_config.num_hidden_layers)

    @property
    def n_heads(self) -> int:
        return int(self.text_config.num_attention_heads)

    @property
    def context_length(self) -> int:
        return int(self.text_config.max_position_embeddings)

    @property
    def image_token_id(self) -> int:
        return int(self.model.config.image_token_id)

    def language_model(self) -> nn.Module:
        """The decoder stack (embeddings, layers, final norm)."""
        return self.model.model.language_model

    def decoder_layers(self) -> nn.ModuleList:
        layers = self.language_model().layers
        assert isinstance(layers, nn.ModuleList)
        return layers

    def attention_modules(self) -> list[nn.Module]:
        return [layer.get_submodule("self_attn") for layer in self.decoder_layers()]

    def is_reference_checkpoint(self) -> bool:
        """True for the published checkpoints METHOD.md's family defaults were set for.

        Those are deep (>= 28 layers); small models (the embedded one, test models) use the
        generic defaults instead.
        """
        return self.n_layers >= 28

    def static_layer(self) -> int:
        """ViCrop's fixed layer: the family's published value, else L // 2."""
        if self.is_reference_checkpoint():
            return self.reference_static_layer
        return self.n_layers // 2

    def clvs_lambda(self) -> float:
        return self.reference_clvs_lambda if self.is_reference_checkpoint() else 0.7

    # --- input ---------------------------------------------------------------------------------
    @property
    def image_processor(self) -> Any:
        return self.processor.image_processor

    @property
    def mean_color(self) -> tuple[int, int, int]:
        """The processor's normalisation mean as an RGB colour (used for padding and masking)."""
        mean = self.image_processor.image_mean
        return tuple(int(round(255 * m)) for m in mean)  # type: ignore[return-value]

    @property
    @abstractmethod
    def patch_size(self) -> int:
        """Side in pixels of the smallest image the vision tower can see."""

    def model_image(self, image: Image.Image) -> Image.Image:
        """The image as handed to the processor (LLaVA pads it to a square)."""
        return image

    def images_kwargs(self, config: LaserConfig) -> dict[str, Any]:
        """Extra processor arguments (the pixel budget of any-resolution models)."""
        return {}

    def encode(
        self, texts: list[str], images: list[Image.Image], config: LaserConfig
    ) -> BatchFeature:
        """One chat-formatted, left-padded row per (user text, image) pair."""
        if len(texts) != len(images):
            raise ValueError(f"{len(texts)} texts but {len(images)} images")
        prompts = [self.prompt(text) for text in texts]
        return self.processor(
            text=prompts,
            images=[self.model_image(image) for image in images],
            padding=True,
            return_tensors="pt",
            **self.images_kwargs(config),
        )

    def prompt(self, text: str) -> str:
        """The model's own chat template with one user turn (image + text) and the reply cue."""
        messages = [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
        ]
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    def visual_mask(self, inputs: BatchFeature) -> Tensor:
        """[batch, seq] bool, True at image-token positions."""
        return inputs["input_ids"] == self.image_token_id

    @abstractmethod
    def geometry(self, image: Image.Image, inputs: BatchFeature) -> ImageGeometry:
        """Grid and cell boxes of `image` as encoded in row 0 of `inputs`."""

    def check_visual_tokens(self, inputs: BatchFeature, geometry: ImageGeometry) -> None:
        rows, cols = geometry.grid
        counts = self.visual_mask(inputs).sum(dim=1)
        if not torch.all(counts == rows * cols):
            raise RuntimeError(
                f"expected {rows * cols} image tokens per row, found {counts.tolist()}"
            )
