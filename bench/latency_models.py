"""Timing script helpers: random models of the real classes, in the shapes `bench_latency` times.

Each model gets the REAL processor files of a published checkpoint (tokenizer, chat template,
image processor), so prompts tokenize and image tokens lay out as they do in practice, and a
config that is either the published one (`published`: LLaVA-1.5-7B, Qwen2.5-VL-7B, for a GPU) or
shrunk (`mid`: minutes on a CPU; `tiny`: seconds, for the smoke test). Random weights time the
same as trained ones. Models are built in memory with the library's capture attention and wrapped
as `laser_core` models (`loading.wrap_model`); nothing is saved.

    python bench/bench_latency.py --models llava,qwen2_vl --shape mid        # this CPU
    python bench/bench_latency.py --models llava,qwen2_5_vl --shape published # a GPU
"""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from PIL import Image, ImageDraw
from transformers import AutoConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from laser_core.capture import ATTENTION_NAME  # noqa: E402
from laser_core.loading import MODEL_CLASSES, VLM, load_processor, wrap_model  # noqa: E402

# Where each family's published processor files are looked for, first found wins. The LLaVA files
# (Llama 2 licence) are not in the repository: they sit beside it, or are carried to a GPU
# machine into .cache/ (see the README's latency section).
FILES = {
    "llava": ("shared/checkpoints/llava-1.5-7b-hf", "../shared/checkpoints/llava-1.5-7b-hf"),
    "qwen": (
        "tests/fixtures/qwen2.5-vl-7b-instruct",
        "../shared/checkpoints/qwen2.5-vl-7b-instruct",
    ),
}
CACHE = ".cache/checkpoints"  # a copy carried to a machine without the shared folder

# Shrunk shapes: (text, vision) overrides of the published configs. Head dim 64 in `mid`, so
# Qwen's mRoPE sections must sum to 32.
TEXT = {
    "mid": {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 8,
            "num_attention_heads": 16, "num_key_value_heads": 4},
    "tiny": {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2},
}  # fmt: skip
MROPE = {"mid": [8, 12, 12], "tiny": [2, 3, 3]}
VISION = {
    "llava": {"mid": {"hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
                      "num_attention_heads": 4},
              "tiny": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                       "num_attention_heads": 2}},
    "qwen2_vl": {"mid": {"depth": 4, "embed_dim": 256, "num_heads": 4, "mlp_ratio": 4},
                 "tiny": {"depth": 1, "embed_dim": 32, "num_heads": 2, "mlp_ratio": 2}},
    "qwen2_5_vl": {"mid": {"depth": 4, "hidden_size": 256, "intermediate_size": 1024,
                           "num_heads": 4, "fullatt_block_indexes": [3]},
                   "tiny": {"depth": 1, "hidden_size": 32, "intermediate_size": 64,
                            "num_heads": 2, "fullatt_block_indexes": [0]}},
}  # fmt: skip
# The image each family is timed on: LLaVA's 576 tokens whatever the size; Qwen's 32 x 32 merged
# blocks = 1024 tokens at 896 x 896 (the `tiny` shape keeps it small).
IMAGE_SIDE = {"mid": 896, "published": 896, "tiny": 112}


def files_for(family: str) -> Path:
    """The published processor files of `family` ("llava" or a Qwen type)."""
    key = "llava" if family == "llava" else "qwen"
    name = Path(FILES[key][0]).name
    for candidate in (*FILES[key], f"{CACHE}/{name}"):
        path = (ROOT / candidate).resolve()
        if (path / "config.json").is_file():
            return path
    raise SystemExit(f"no processor files for {family}: looked in {FILES[key]} and {CACHE}")


def model_config(family: str, shape: str) -> Any:
    """The published config of the family's checkpoint, shrunk to `shape` unless 'published'."""
    source = files_for(family)
    data = json.loads((source / "config.json").read_text())
    data["model_type"] = family  # Qwen2-VL reuses Qwen2.5-VL's files with its own classes
    if shape != "published":
        data = _shrunk(data, family, shape)
    config = AutoConfig.for_model(**data)
    config.use_cache = True
    return config


def _shrunk(data: dict[str, Any], family: str, shape: str) -> dict[str, Any]:
    data = copy.deepcopy(data)
    if family == "llava":
        data["text_config"] = {**data["text_config"], **TEXT[shape]}
        data["vision_config"] = {**data["vision_config"], **VISION[family][shape]}
        return data
    text = {k: v for k, v in data.items() if k not in ("vision_config", "text_config")}
    text.update(TEXT[shape])
    text["rope_scaling"] = {"type": "mrope", "mrope_section": MROPE[shape]}
    vision = {**data["vision_config"], **VISION[family][shape]}
    if family == "qwen2_vl":
        vision["hidden_size"] = TEXT[shape]["hidden_size"]  # the merger's output
        vision.pop("out_hidden_size", None)
    else:
        vision["out_hidden_size"] = TEXT[shape]["hidden_size"]
    return {**text, "vision_config": vision, "text_config": text}


def build(
    family: str, shape: str, device: torch.device, dtype: torch.dtype, *, eager: bool = False
) -> VLM:
    """A seeded random model of `family` in `shape`, wrapped for `laser_core`.

    `eager=True` builds the anchors' variant instead (eager attention, for `output_attentions`);
    the same seed gives the same weights.
    """
    config = model_config(family, shape)
    text_attention = "eager" if eager else ATTENTION_NAME
    torch.manual_seed(0)
    with torch.device(device):
        model = MODEL_CLASSES[family]._from_config(
            config,
            attn_implementation={"text_config": text_attention, "vision_config": "sdpa"},
            dtype=dtype,
        )
    model.generation_config.eos_token_id = None  # random weights: every answer is N tokens
    model.generation_config.pad_token_id = config.text_config.pad_token_id or 0
    processor = load_processor(str(files_for(family)), family)
    return wrap_model(model, processor, f"{family}-{shape}", device=device)


def scene(family: str, shape: str) -> Image.Image:
    """A picture with a few shapes, of the size the family is timed on."""
    side = IMAGE_SIDE[shape]
    image = Image.new("RGB", (side, side), (225, 225, 225))
    draw = ImageDraw.Draw(image)
    draw.ellipse((side // 10, side // 2, side // 3, side * 5 // 6), fill=(210, 40, 40))
    draw.rectangle((side * 2 // 3, side // 8, side * 9 // 10, side // 3), fill=(40, 70, 200))
    return image


def quiet() -> None:
    """No progress bars or hub access from transformers."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging

    logging.disable_progress_bar()
    logging.set_verbosity_error()
