"""The passes of one image and question, each run at most once and shared by every method.

LASER's passes depend on each other (prefill (I, q) and (I, no q) -> crop -> decode (I+, I-)),
and its baselines need some of the same ones (ViCrop: a[q] and a[generic]; the vanilla answer).
A `Passes` object holds them for one image, question and config:

    .capture(kind)   a[q], a[none] or a[generic], [layer, head, patch], from the LAST prompt row
    .vanilla()       the greedy answer on (I, q); decoding it also captures a[q]
    .encode(...)     model inputs whose images are processed and encoded by the tower once
    .crop(box)       the image cropped, one object per box (so its features are reused too)

Prefix sharing. The with-question, query-free and generic prompts of one image are the same up to
and including the image tokens (system text, then the image), and attention is causal, so that
prefix's keys and values are the same in all three. The prefix is prefilled once, and each
prompt's remaining text (a dozen tokens) runs on that cache, with the prompt's own positions over
the FULL prompt (Qwen's 3-D mRoPE from the model's rope-index function); the captured rows are
the same numbers as full prefills' (a test checks 1e-5). After each use the cache is cropped back
to the prefix, and it is freed once every prompt is done. Where the prompts part before the image
ends (the embedded model asks its question before the image: 2 tokens shared), or a tokenizer
merges across it, prompts are prefilled in full instead; `shared_prefix` says which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

import torch
from PIL import Image
from torch import Tensor
from transformers import BatchFeature
from transformers.modeling_outputs import BaseModelOutputWithPooling

from laser_core.adapters import ImageGeometry
from laser_core.adapters.base import ImageRow
from laser_core.capture import AttentionRecorder, attach
from laser_core.config import LaserConfig
from laser_core.crop import Box
from laser_core.decode import Decoded, ModelInputs, decode, eos_ids, to_device
from laser_core.loading import VLM
from laser_core.result import LaserResult
from laser_core.stages import Prompts, capture, check_encoded, prompt_texts

Kind = Literal["query", "free", "generic"]
KINDS: tuple[Kind, ...] = ("query", "free", "generic")


class Passes:
    """Every shared pass of one (image, question, config), computed on first use, then kept.

    Create with a prepared image, question and resolved config (`stages.prepare`), or from an
    earlier `explain` result of the same input (`from_result`), which already holds the captures
    and the vanilla answer.
    """

    def __init__(self, vlm: VLM, image: Image.Image, question: str, config: LaserConfig) -> None:
        self.vlm, self.image, self.question, self.config = vlm, image, question, config
        self.prompts: Prompts = prompt_texts(question, config)
        self._geometry: ImageGeometry | None = None
        self._full: dict[Kind, ModelInputs] = {}  # each prompt, encoded with the image
        self._prefix_length: int | None = None
        self._captures: dict[Kind, Tensor] = {}
        self._vanilla: Decoded | None = None
        self._prefix: Any = None  # the shared prefix's KV cache, while a prompt still needs it
        self._features: dict[int, tuple[Image.Image, Tensor]] = {}  # id(image) -> features
        self._pixels: dict[int, tuple[Image.Image, dict[str, Tensor]]] = {}  # processed
        self._crops: dict[Box, Image.Image] = {}

    @classmethod
    def from_result(cls, vlm: VLM, result: LaserResult) -> Passes:
        """The passes an `explain` result already holds: its captures and vanilla answer."""
        config = LaserConfig.from_dict(result.config)
        passes = cls(vlm, result.image, result.question, config)
        passes._geometry = ImageGeometry(
            result.image.size, result.grid, result.cell_boxes, result.grid_region
        )
        for kind, attn in zip(
            KINDS, (result.attn_query, result.attn_free, result.attn_generic), strict=True
        ):
            if attn is not None:
                passes._captures[kind] = torch.from_numpy(attn)
        steps = tuple(result.extras.get("baseline_steps", ()))
        if result.baseline_answer is not None:
            stop = eos_ids(vlm)
            ids = []
            for step in steps:
                if step.token_id in stop:
                    break
                ids.append(step.token_id)
            passes._vanilla = Decoded(result.baseline_answer, tuple(ids), steps)
        return passes

    # --- what the methods ask for ----------------------------------------------------------
    @property
    def geometry(self) -> ImageGeometry:
        """Where the image's visual tokens lie in it."""
        if self._geometry is None:
            self._prompt("query")
        assert self._geometry is not None
        return self._geometry

    @property
    def shared_prefix(self) -> bool:
        """Whether the query-free prompt runs on the query prompt's prefix (LASER's two
        captures share one image prefill); else it is prefilled in full."""
        return self._shares("free")

    def captured(self, kind: Kind) -> Tensor | None:
        """A capture if some pass already made it, else None (nothing runs)."""
        return self._captures.get(kind)

    def capture(self, kind: Kind) -> Tensor:
        """[layer, head, patch] attention of the prompt's last position over the image."""
        if kind not in self._captures:
            if self._shares(kind):
                self._run_suffix(kind, decode_answer=False)
            else:
                inputs = self.pre_encoded(self._prompt(kind), [self.image])
                self._captures[kind] = capture(self.vlm, inputs)[0]
        return self._captures[kind]

    def vanilla(self) -> Decoded:
        """The greedy answer on (I, q); decoding it also captures a[q]."""
        if self._vanilla is None:
            if self._shares("query"):
                a_query, decoded = self._run_suffix("query", decode_answer=True)
            else:
                full = self._prompt("query")
                recorder = AttentionRecorder(self.vlm.adapter.visual_mask(full))
                with attach(self.vlm.adapter.attention_modules(), recorder):
                    decoded = self._decode_greedy(self.pre_encoded(full, [self.image]))
                a_query = recorder.stacked(self.vlm.adapter.n_layers)[0]
            assert decoded is not None
            self._vanilla = decoded
            self._captures.setdefault("query", a_query)
            self._release()
        return self._vanilla

    def encode(
        self, texts: Sequence[str], images: Sequence[ImageRow]
    ) -> tuple[ModelInputs, tuple[ImageGeometry, ...]]:
        """`stages.encode_checked`, with every image processed and encoded once.

        Each image goes through the image processor and the vision tower on its first use only;
        the inputs carry `mm_encoder_outputs` (transformers' pre-encoded images), not pixels.
        """
        inputs, geometries = self.encode_pixels(texts, images)
        rows = [[row] if isinstance(row, Image.Image) else list(row) for row in images]
        return self.pre_encoded(inputs, [image for row in rows for image in row]), geometries

    def encode_pixels(
        self, texts: Sequence[str], images: Sequence[ImageRow]
    ) -> tuple[BatchFeature, tuple[ImageGeometry, ...]]:
        """`stages.encode_checked` with pixels (for a caller that changes them, as VCD's noise),
        each image through the image processor once (kept)."""
        rows = [[row] if isinstance(row, Image.Image) else list(row) for row in images]
        processed = [[self._processed(image) for image in row] for row in rows]
        inputs = self.vlm.adapter.encode_processed(texts, processed)
        return inputs, check_encoded(self.vlm, inputs, images, self.config)

    def _processed(self, image: Image.Image) -> dict[str, Tensor]:
        if id(image) not in self._pixels:
            self._pixels[id(image)] = (image, self.vlm.adapter.process_image(image, self.config))
        return self._pixels[id(image)][1]

    def crop(self, box: Box) -> Image.Image:
        """The image cropped to `box`: the same object for the same box."""
        if box not in self._crops:
            self._crops[box] = self.image.crop(box)
        return self._crops[box]

    def features(self, inputs: Mapping[str, Any], indices: Sequence[int]) -> list[Tensor]:
        """The vision tower on the images of `inputs` at `indices`, uncached (e.g. VCD's noise)."""
        with torch.inference_mode():
            return self.vlm.adapter.image_features(to_device(inputs, self.vlm.device), indices)

    # --- the prompts and their prefix ------------------------------------------------------
    def _prompt(self, kind: Kind) -> ModelInputs:
        """One prompt with the image, encoded on first use (the image's pixels kept once)."""
        if kind not in self._full:
            text = getattr(self.prompts, kind)
            self._full[kind], (geometry,) = self.encode_pixels([text], [self.image])
            self._geometry = self._geometry or geometry
        return self._full[kind]

    def _prefix_tokens(self) -> int:
        """Length of the prefix the prompts can share: the query prompt through its last image
        token (the rest of each prompt is its own text)."""
        if self._prefix_length is None:
            visual = self.vlm.adapter.visual_mask(self._prompt("query"))[0]
            self._prefix_length = int(visual.nonzero()[-1]) + 1
        return self._prefix_length

    def _shares(self, kind: Kind) -> bool:
        """Whether `kind`'s prompt starts with the query prompt's prefix (it does not where the
        question comes before the image, or a tokenizer merges across the image's end)."""
        length = self._prefix_tokens()
        ids = self._prompt(kind)["input_ids"][0]
        query = self._prompt("query")["input_ids"][0]
        return len(ids) > length and bool(torch.equal(ids[:length], query[:length]))

    def _prefix_cache(self) -> Any:
        if self._prefix is None:
            inputs = self.vlm.adapter.prefix_inputs(self._prompt("query"), self._prefix_tokens())
            inputs = self.pre_encoded(inputs, [self.image])
            with torch.inference_mode():
                out = self.vlm.model(
                    **to_device(inputs, self.vlm.device), use_cache=True, logits_to_keep=1
                )
            self._prefix = out.past_key_values
        return self._prefix

    def _run_suffix(self, kind: Kind, *, decode_answer: bool) -> tuple[Tensor, Decoded | None]:
        """A prompt's text after the prefix, on the prefix cache: its capture (and answer)."""
        full, start = self._prompt(kind), self._prefix_tokens()
        cache = self._prefix_cache()
        recorder = AttentionRecorder(self.vlm.adapter.visual_mask(full))
        decoded = None
        try:
            with attach(self.vlm.adapter.attention_modules(), recorder):
                if decode_answer:
                    self.vlm.adapter.prepare_continuation(full)
                    text = {key: full[key] for key in ("input_ids", "attention_mask")}
                    decoded = self._decode_greedy(text, past_key_values=cache)
                else:
                    inputs = self.vlm.adapter.suffix_inputs(full, start)
                    with torch.inference_mode():
                        self.vlm.model(
                            **to_device(inputs, self.vlm.device),
                            past_key_values=cache,
                            use_cache=True,
                            logits_to_keep=1,
                        )
        finally:
            cache.crop(start - cache.get_seq_length())  # back to the prefix alone
        captured = recorder.stacked(self.vlm.adapter.n_layers)[0]
        self._captures.setdefault(kind, captured)
        self._release()
        return captured, decoded

    def _release(self) -> None:
        """Free the prefix cache once no prompt needs it."""
        if self._vanilla is not None and all(kind in self._captures for kind in KINDS):
            self._prefix = None

    def _decode_greedy(self, inputs: ModelInputs, **options: Any) -> Decoded:
        return decode(self.vlm, inputs, replace(self.config, decoding="greedy"), **options)

    # --- vision features ----------------------------------------------------------------
    def pre_encoded(
        self, inputs: Mapping[str, Any], images: Sequence[Image.Image | Tensor]
    ) -> ModelInputs:
        """`inputs` with pixels replaced by vision features, one per image of `inputs` (in row
        order): a PIL image's are computed once and kept; a tensor is used as it is."""
        missing = [
            i
            for i, image in enumerate(images)
            if isinstance(image, Image.Image) and id(image) not in self._features
        ]
        if missing:
            for index, features in zip(missing, self.features(inputs, missing), strict=True):
                image = images[index]
                assert isinstance(image, Image.Image)
                self._features[id(image)] = (image, features)  # keeps the image alive
        features = [
            self._features[id(image)][1] if isinstance(image, Image.Image) else image
            for image in images
        ]
        out = {k: v for k, v in inputs.items() if k not in self.vlm.adapter.pixel_keys}
        out["mm_encoder_outputs"] = {"image": BaseModelOutputWithPooling(pooler_output=features)}
        return out
