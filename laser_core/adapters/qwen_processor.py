"""Image-only processors for Qwen2-VL and Qwen2.5-VL that never touch torchvision.

The stock ``Qwen2VLProcessor`` and ``Qwen2_5_VLProcessor`` hold three sub-processors: an image
processor, a tokenizer and a *video* processor. The video processor imports torchvision, so
without it the stock processors can neither be built nor loaded, and ``AutoProcessor`` silently
falls back to returning the bare tokenizer. LASER only feeds still images, so the classes here
drop the video slot (``video_processor=None``) and always use the PIL image processor
``Qwen2VLImageProcessorPil``. They behave the same with or without torchvision installed, and
their outputs (``input_ids``, ``attention_mask``, ``pixel_values``, ``image_grid_thw``,
``mm_token_type_ids``) match the stock processors'.

A local folder and a hub id go through the same path in ``from_pretrained``: the chat template
comes from the processor files (``get_processor_dict``), the tokenizer from ``AutoTokenizer`` and
the image processor from ``Qwen2VLImageProcessorPil.from_pretrained``. Without a video processor,
``videos=`` arguments are ignored and ``processor.video_processor`` does not exist.
"""

from __future__ import annotations

import os
from typing import Any, Literal, TypeVar

from transformers import AutoTokenizer, PreTrainedTokenizerBase, ProcessorMixin
from transformers.models.qwen2_5_vl.processing_qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.models.qwen2_vl.processing_qwen2_vl import Qwen2VLProcessor

QwenModelType = Literal["qwen2_vl", "qwen2_5_vl"]

# Loader options that locate files (local or on the hub) beyond the explicit ones of
# `from_pretrained`; shared by every sub-loader.
EXTRA_HUB_KWARGS = ("subfolder", "proxies")

_P = TypeVar("_P", bound=ProcessorMixin)


class _ImageOnlyProcessor(ProcessorMixin):
    """Drops the video slot and loads without torchvision; mixed in before a stock Qwen processor.

    ``ProcessorMixin`` derives the sub-processor slots from the ``__init__`` signature, so leaving
    ``video_processor`` out of it is what removes the slot for loading and saving.
    """

    def __init__(
        self,
        image_processor: Qwen2VLImageProcessorPil | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
        chat_template: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            image_processor, tokenizer, video_processor=None, chat_template=chat_template, **kwargs
        )

    @classmethod
    def from_pretrained(
        cls: type[_P],
        pretrained_model_name_or_path: str | os.PathLike[str],
        cache_dir: str | os.PathLike[str] | None = None,
        force_download: bool = False,
        local_files_only: bool = False,
        token: str | bool | None = None,
        revision: str = "main",
        **kwargs: Any,
    ) -> _P:
        """Load the tokenizer, the PIL image processor and the chat template.

        Args:
            pretrained_model_name_or_path: Local folder or hub id; both use the same path.
            cache_dir: Hub cache folder.
            force_download: Re-download hub files even if cached.
            local_files_only: Never reach the hub (also implied by ``HF_HUB_OFFLINE=1``).
            token: Hub token.
            revision: Hub revision.
            **kwargs: ``subfolder``/``proxies``, passed to every loader; anything else overrides
                image-processor settings (e.g. ``min_pixels``, ``max_pixels``).

        Returns:
            The processor, with no ``video_processor``.
        """
        hub_kwargs = {
            "cache_dir": cache_dir,
            "force_download": force_download,
            "local_files_only": local_files_only,
            "token": token,
            "revision": revision,
            **{key: kwargs.pop(key) for key in EXTRA_HUB_KWARGS if key in kwargs},
        }
        path = pretrained_model_name_or_path
        processor_dict, _ = ProcessorMixin.get_processor_dict(path, **hub_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path, **hub_kwargs)
        # The PIL class directly: AutoImageProcessor picks the torchvision one when installed.
        image_processor = Qwen2VLImageProcessorPil.from_pretrained(path, **hub_kwargs, **kwargs)
        template = processor_dict.get("chat_template") or tokenizer.chat_template
        return cls(image_processor=image_processor, tokenizer=tokenizer, chat_template=template)


class Qwen2VLImageOnlyProcessor(_ImageOnlyProcessor, Qwen2VLProcessor):
    """``Qwen2VLProcessor`` without the video slot: PIL image processor + tokenizer."""


class Qwen2_5_VLImageOnlyProcessor(_ImageOnlyProcessor, Qwen2_5_VLProcessor):
    """``Qwen2_5_VLProcessor`` without the video slot: PIL image processor + tokenizer."""


QwenImageOnlyProcessor = Qwen2VLImageOnlyProcessor | Qwen2_5_VLImageOnlyProcessor

PROCESSOR_CLASSES: dict[str, type[QwenImageOnlyProcessor]] = {
    "qwen2_vl": Qwen2VLImageOnlyProcessor,
    "qwen2_5_vl": Qwen2_5_VLImageOnlyProcessor,
}


def load_qwen_processor(
    path_or_id: str | os.PathLike[str], model_type: str, **kwargs: Any
) -> QwenImageOnlyProcessor:
    """Load an image-only Qwen processor, with or without torchvision installed.

    Args:
        path_or_id: Local folder or hub id (e.g. ``"Qwen/Qwen2-VL-7B-Instruct"``); both go
            through the same code path.
        model_type: ``config.model_type`` of the checkpoint, one of ``QwenModelType``:
            ``"qwen2_vl"`` or ``"qwen2_5_vl"``.
        **kwargs: Hub options (``revision``, ``cache_dir``, ``token``, ``local_files_only``, ...)
            passed to every loader; anything else overrides image-processor settings (e.g.
            ``min_pixels``, ``max_pixels``).

    Returns:
        A processor whose call on ``text=..., images=[pil]`` returns ``input_ids``,
        ``attention_mask``, ``pixel_values``, ``image_grid_thw`` and ``mm_token_type_ids``.

    Raises:
        ValueError: If ``model_type`` is not a supported Qwen type.
    """
    if model_type not in PROCESSOR_CLASSES:
        raise ValueError(
            f"unsupported model_type {model_type!r}; expected one of {sorted(PROCESSOR_CLASSES)}"
        )
    return PROCESSOR_CLASSES[model_type].from_pretrained(path_or_id, **kwargs)
