"""What every model family must tell the method, and nothing more.

An adapter knows a family's prompt layout, how its processor turns an image into visual tokens,
and where each visual token sits in the ORIGINAL image. The method code never branches on model
names: it asks the adapter.

    family adapter
      .encode(texts, images)    -> BatchFeature, left-padded, one row per text with its image(s)
      .visual_mask(inputs)      -> [batch, seq] bool: image-token positions
      .geometry(image, inputs, index)  -> ImageGeometry of the index-th image of the batch
      .attention_modules()      -> the decoder's self-attention modules (for hooks)
      .static_layer(), .clvs_gamma(), .vicrop_base_side   METHOD.md's per-checkpoint defaults
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
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
        covered: (x0, y0, x1, y1) the region of original-pixel space the whole grid spans,
            unclipped: LLaVA's padded square (it extends past the image), else the image.
    """

    image_size: tuple[int, int]
    grid: tuple[int, int]
    cell_boxes: np.ndarray
    covered: tuple[float, float, float, float]

    @property
    def on_image(self) -> np.ndarray:
        """[rows, cols] bool: the cells that cover some of the image (not padding alone)."""
        boxes = self.cell_boxes
        return (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])

    @property
    def cell_size(self) -> tuple[float, float]:
        """(width, height) of one grid cell in original pixels, before clipping."""
        rows, cols = self.grid
        x0, y0, x1, y1 = self.covered
        return (x1 - x0) / cols, (y1 - y0) / rows


ImageRow = Image.Image | Sequence[Image.Image]  # the image(s) of one prompt, in order


@dataclass(frozen=True)
class Published:
    """A published checkpoint whose defaults METHOD.md fixes (other models get generic ones)."""

    name: str
    static_layer: int  # ViCrop's and laser_static's layer
    clvs_gamma: float  # CLVS's soft memory window (Eq. 7)


# METHOD.md's per-checkpoint settings, keyed by what identifies the checkpoint: the model type and
# the decoder depth (`Qwen2-VL-2B` and `-7B` both have 28 layers and share LASER's setting).
PUBLISHED: dict[tuple[str, int], Published] = {
    ("llava", 32): Published("LLaVA-1.5-7B", 14, 0.8),
    ("llava", 40): Published("LLaVA-1.5-13B", 14, 0.8),
    ("qwen2_vl", 28): Published("Qwen2-VL-2B / 7B", 14, 0.7),
    ("qwen2_5_vl", 28): Published("Qwen2.5-VL-7B", 14, 0.7),
    ("qwen2_5_vl", 36): Published("Qwen2.5-VL-3B", 22, 0.7),
}
CLVS_GAMMA = 0.7  # every model but LLaVA-1.5 (the paper's implementation details, Appendix B.3)


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

    def published(self) -> Published | None:
        """The published checkpoint this model has the shape of, if any (see `PUBLISHED`)."""
        return PUBLISHED.get((str(self.model.config.model_type), self.n_layers))

    def static_layer(self) -> int:
        """ViCrop's fixed layer: the published checkpoint's value, else L // 2."""
        published = self.published()
        return published.static_layer if published else self.n_layers // 2

    def clvs_gamma(self) -> float:
        """CLVS's memory window: 0.8 for LLaVA-1.5, 0.7 for every other model."""
        published = self.published()
        return published.clvs_gamma if published else CLVS_GAMMA

    @property
    @abstractmethod
    def vicrop_base_side(self) -> int:
        """ViCrop's base crop side b in pixels: the model's native input side."""

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
        self, texts: Sequence[str], images: Sequence[ImageRow], config: LaserConfig
    ) -> BatchFeature:
        """One chat-formatted, left-padded row per text, with its image or images (in order).

        A row with several images is one user turn: the image tokens of each, then the text once
        (ViCrop's original + crop). The batch's images are numbered in row order for `geometry`.
        The same as `processor(text=..., images=...)`, in two steps (`process_image`, then
        `encode_processed`) so that a caller can process an image once for several prompts.
        """
        if len(texts) != len(images):
            raise ValueError(f"{len(texts)} texts but {len(images)} image rows")
        rows = [[row] if isinstance(row, Image.Image) else list(row) for row in images]
        processed = [[self.process_image(image, config) for image in row] for row in rows]
        return self.encode_processed(texts, processed)

    def process_image(self, image: Image.Image, config: LaserConfig) -> dict[str, Tensor]:
        """The image processor's inputs for one image (pixels; Qwen's grid too)."""
        kwargs = self.images_kwargs(config)
        return dict(self.image_processor([self.model_image(image)], return_tensors="pt", **kwargs))

    def encode_processed(
        self, texts: Sequence[str], rows: Sequence[Sequence[Mapping[str, Tensor]]]
    ) -> BatchFeature:
        """`encode` from images already processed (`process_image`), one list per text.

        Uses the processor's own steps: its image-token expansion (`replace_image_token`,
        `get_text_with_replacements`), its tokenizer, its modality ids.
        """
        processor = self.processor
        pairs = zip(texts, rows, strict=True)
        prompts = [self.prompt(text, n_images=len(row)) for text, row in pairs]
        flat = [image for row in rows for image in row]
        replacements = [processor.replace_image_token(image, image_idx=0) for image in flat]
        expanded, _ = processor.get_text_with_replacements(prompts, replacements)
        data = dict(processor.tokenizer(expanded, padding=True, return_tensors="pt"))
        if getattr(processor, "return_mm_token_type_ids", False):
            types = processor.create_mm_token_type_ids(data["input_ids"].tolist())
            data["mm_token_type_ids"] = torch.tensor(types)
        for key in flat[0] if flat else ():
            data[key] = torch.cat([image[key] for image in flat])  # images in row order
        return BatchFeature(data)

    def prompt(self, text: str, *, n_images: int = 1) -> str:
        """The model's own chat template: one user turn (the images, then the text), reply cue."""
        content: list[dict[str, str]] = [{"type": "image"} for _ in range(n_images)]
        content.append({"type": "text", "text": text})
        messages = [{"role": "user", "content": content}]
        return self.processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )

    def visual_mask(self, inputs: BatchFeature) -> Tensor:
        """[batch, seq] bool, True at image-token positions."""
        return inputs["input_ids"] == self.image_token_id

    # --- running parts of a prompt (prefix sharing, pre-encoded images) ----------------------
    pixel_keys: ClassVar[tuple[str, ...]] = ("pixel_values",)  # what vision features replace
    token_keys: ClassVar[tuple[str, ...]] = ("input_ids", "attention_mask")  # [batch, seq] ones

    @abstractmethod
    def image_features(self, inputs: Mapping[str, Any], indices: Sequence[int]) -> list[Tensor]:
        """The vision tower's output (projected, one [tokens, hidden] tensor per image) for the
        images of `inputs` at `indices` (numbered in row order), in one tower call."""

    def prefix_inputs(self, inputs: Mapping[str, Any], length: int) -> dict[str, Any]:
        """Row 0 of `inputs` cut to its first `length` tokens (the image included)."""
        cut = {key: inputs[key][:1, :length] for key in self.token_keys if key in inputs}
        return {**{k: v for k, v in inputs.items() if k not in cut}, **cut}

    def suffix_inputs(self, inputs: Mapping[str, Any], start: int) -> dict[str, Any]:
        """Tokens `start:` of a one-row prompt, with their positions over the FULL prompt."""
        return {
            "input_ids": inputs["input_ids"][:, start:],
            "attention_mask": inputs["attention_mask"],
            "position_ids": self.positions(inputs)[..., start:],
        }

    def positions(self, inputs: Mapping[str, Any]) -> Tensor:
        """The position ids the model gives a one-row prompt without padding: 0..S-1."""
        return torch.arange(inputs["input_ids"].shape[1])[None]

    def prepare_continuation(self, inputs: Mapping[str, Any]) -> None:  # noqa: B027 (a no-op)
        """Ready the model to continue `inputs` (a full prompt) from a cache of its prefix;
        nothing to do for 1-D positions."""

    @abstractmethod
    def geometry(self, image: Image.Image, inputs: BatchFeature, index: int = 0) -> ImageGeometry:
        """Grid and cell boxes of `image`, the `index`-th image of `inputs` (in row order)."""

    def check_visual_tokens(
        self, inputs: BatchFeature, geometries: Sequence[ImageGeometry]
    ) -> None:
        """Every row holds as many image tokens as the grids of `geometries` (one row's images)."""
        expected = sum(g.grid[0] * g.grid[1] for g in geometries)
        counts = self.visual_mask(inputs).sum(dim=1)
        if not torch.all(counts == expected):
            raise RuntimeError(f"expected {expected} image tokens per row, found {counts.tolist()}")
