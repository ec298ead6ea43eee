"""Load a supported vision-language model by hub id or local folder.

`load_model()` with no argument loads the embedded model shipped in `assets/models/`. The family
is read from the checkpoint's `config.model_type` and picks the adapter; the text model runs with
the last-row capture attention (plain SDPA unless a hook is attached), the vision tower with SDPA.
No `trust_remote_code`; Qwen processors are loaded without torchvision.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    GenerationConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedModel,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLForConditionalGeneration,
)

from laser_core.adapters import VLMAdapter, adapter_class
from laser_core.adapters.qwen_processor import load_qwen_processor
from laser_core.capture import ATTENTION_NAME

EMBEDDED_MODEL = Path(__file__).resolve().parent.parent / "assets" / "models" / "laser-toy"

# The published checkpoints the app offers (each needs a download and, in practice, a GPU).
HUB_MODELS = (
    "llava-hf/llava-1.5-7b-hf",
    "llava-hf/llava-1.5-13b-hf",
    "Qwen/Qwen2-VL-2B-Instruct",
    "Qwen/Qwen2-VL-7B-Instruct",
    "Qwen/Qwen2.5-VL-3B-Instruct",
    "Qwen/Qwen2.5-VL-7B-Instruct",
)

MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    "llava": LlavaForConditionalGeneration,
    "qwen2_vl": Qwen2VLForConditionalGeneration,
    "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration,
}


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why in plain words."""


@dataclass
class VLM:
    """A loaded model with its processor and family adapter: what every verb takes."""

    model: PreTrainedModel
    processor: Any
    adapter: VLMAdapter
    model_id: str
    device: torch.device
    dtype: torch.dtype

    @property
    def tokenizer(self) -> Any:
        return self.processor.tokenizer


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The given device, else cuda, else mps, else cpu."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, dtype: torch.dtype | str | None = None) -> torch.dtype:
    """bfloat16 on GPUs that support it, float16 on other accelerators, float32 on CPU."""
    if isinstance(dtype, str):
        resolved = getattr(torch, dtype, None)
        if not isinstance(resolved, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r}")
        return resolved
    if dtype is not None:
        return dtype
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.float32


def load_model(
    model_id_or_path: str | os.PathLike[str] | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
) -> VLM:
    """Load a model, its processor and its adapter.

    Args:
        model_id_or_path: Hub id (e.g. "llava-hf/llava-1.5-7b-hf") or local folder; None = the
            embedded model.
        device: "cuda", "mps", "cpu", ...; None = the best available.
        dtype: torch dtype or its name; None = a sensible one for the device.

    Raises:
        ModelLoadError: weights or files cannot be found or fetched.
        ValueError: the model family is not supported (the message lists the supported ones).
    """
    source = str(model_id_or_path) if model_id_or_path is not None else str(EMBEDDED_MODEL)
    if model_id_or_path is None and not (EMBEDDED_MODEL / "config.json").is_file():
        raise ModelLoadError(f"the embedded model is missing: no config.json in {EMBEDDED_MODEL}")
    if Path(source).is_dir() and not (Path(source) / "config.json").is_file():
        raise ModelLoadError(f"could not load a model from the folder {source}: no config.json")
    target = pick_device(device)
    torch_dtype = pick_dtype(target, dtype)
    config = _fetch(source, "configuration", lambda: AutoConfig.from_pretrained(source))
    adapter_class(config.model_type)  # an unsupported family is refused before any download
    model_class = MODEL_CLASSES[config.model_type]
    model = _fetch(
        source,
        "weights",
        lambda: model_class.from_pretrained(
            source,
            dtype=torch_dtype,
            attn_implementation={"text_config": ATTENTION_NAME, "vision_config": "sdpa"},
        ),
    )
    processor = _fetch(source, "processor", lambda: load_processor(source, config.model_type))
    return wrap_model(model, processor, source, device=target)


def wrap_model(
    model: PreTrainedModel, processor: Any, model_id: str, *, device: torch.device
) -> VLM:
    """A VLM from a model built with `ATTENTION_NAME` for its text attention (`load_model` does;
    benchmarks that build random models in memory do too) and its processor."""
    model = model.to(device).eval()
    model.generation_config = _plain_generation_config(model.generation_config)
    processor.tokenizer.padding_side = "left"
    if processor.tokenizer.pad_token_id is None:
        processor.tokenizer.pad_token = processor.tokenizer.eos_token
    family = adapter_class(model.config.model_type)
    return VLM(model, processor, family(model, processor), model_id, device, model.dtype)


def load_processor(source: str, model_type: str) -> Any:
    """The processor of a checkpoint folder or hub id (Qwen's without torchvision)."""
    if model_type == "llava":
        return LlavaProcessor.from_pretrained(source)
    return load_qwen_processor(source, model_type)


def _plain_generation_config(loaded: GenerationConfig) -> GenerationConfig:
    """Keep the special tokens, drop checkpoint sampling defaults (repetition penalty, top-k...).

    LASER, VCD and CLVS define the decoding rule themselves; a penalty added by a checkpoint's
    generation config would silently change the logits they combine.
    """
    return GenerationConfig(
        bos_token_id=loaded.bos_token_id,
        eos_token_id=loaded.eos_token_id,
        pad_token_id=loaded.pad_token_id,
        do_sample=False,
    )


def _fetch(source: str, what: str, load: Any) -> Any:
    """Run a loader, turning hub and file errors into one readable ModelLoadError."""
    try:
        return load()
    except OSError as error:  # hub errors subclass OSError
        local = Path(source).exists()
        where = f"the folder {source}" if local else f"the hub id {source!r}"
        hint = (
            "the folder is incomplete"
            if local
            else "check the id, or the network (this machine may be offline: set HF_HUB_OFFLINE=1 "
            "and use a folder or the embedded model)"
        )
        first_line = (
            str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        )
        raise ModelLoadError(
            f"could not load the model {what} from {where}: {first_line[:300]} ({hint})"
        ) from None
