"""Small random models built from the published checkpoints' real non-weight files.

`llava-hf/llava-1.5-7b-hf` and `Qwen/Qwen2.5-VL-7B-Instruct` keep their own tokenizer, chat
template, processor files, special-token ids, vocabulary and generation config; only
`config.json` is shrunk (4 decoder layers, narrow widths) and seeded random weights are saved
beside the files. Tests load them through `laser_core.load_model(folder)`, as a download would be.

The Qwen2.5-VL files (Apache-2.0) are vendored in `tests/fixtures/`. The LLaVA files (Llama 2
licence) are read from `../shared/checkpoints/` beside the clone; without them the LLaVA tests
skip, naming that folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image, ImageDraw
from transformers import (
    AutoConfig,
    LlavaForConditionalGeneration,
    PreTrainedModel,
    Qwen2_5_VLForConditionalGeneration,
)

from laser_core import METHODS, VLM, LaserConfig

REPO = Path(__file__).resolve().parents[2]
SHARED_FILES = REPO / ".." / "shared" / "checkpoints"  # beside the clone, in CI too
LLAVA_FILES = SHARED_FILES / "llava-1.5-7b-hf"
QWEN_FILES = REPO / "tests" / "fixtures" / "qwen2.5-vl-7b-instruct"
FAMILIES = ("llava", "qwen2_5_vl")
SEED = 0
QUESTION = "What colour is the ball?"
RUN_CONFIG = LaserConfig(max_new_tokens=3)
RUNS = ("explain", *METHODS, "run_methods")  # the runs `method_runs` records


def _shrink_llava(config: dict[str, Any]) -> None:
    """4-layer Llama at width 64; CLIP kept at 336 px / 14-px patches: the real 24 x 24 grid."""
    config["text_config"].update(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    config["vision_config"].update(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        projection_dim=32,
    )


def _shrink_qwen(config: dict[str, Any]) -> None:
    """4-layer decoder at width 64 (flat keys, as published); a 2-block vision tower."""
    config.update(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_window_layers=4,
    )
    config["rope_scaling"]["mrope_section"] = [2, 3, 3]  # sums to head_dim / 2 = 64 / 4 / 2
    config["vision_config"].update(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        out_hidden_size=64,  # the merger feeds the text model: its hidden size
        fullatt_block_indexes=[1],  # block 0 windowed, block 1 full, like the real mix
    )


SHRINK: dict[str, Callable[[dict[str, Any]], None]] = {
    "llava": _shrink_llava,
    "qwen2_5_vl": _shrink_qwen,
}
MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    "llava": LlavaForConditionalGeneration,
    "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration,
}


def build_published_shape(family: str, files: Path, folder: Path) -> Path:
    """Copy the published files to `folder`, shrink its config.json, save seeded random weights.

    Only `config.json` changes and only the weights are added: the tokenizer, chat template,
    processor and generation files stay byte for byte as published.
    """
    folder.mkdir(parents=True)
    for source in files.iterdir():
        shutil.copyfile(source, folder / source.name)  # not copy2: the sources are read-only
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text())
    SHRINK[family](config)
    config_path.write_text(json.dumps(config, indent=2))
    torch.manual_seed(SEED)
    model = MODEL_CLASSES[family](AutoConfig.from_pretrained(folder)).eval()
    staging = folder.with_name(folder.name + "-weights")
    model.save_pretrained(staging)  # it also writes config and generation files: keep weights only
    for weights in staging.glob("model*.safetensors*"):
        shutil.move(weights, folder / weights.name)
    shutil.rmtree(staging)
    return folder


@dataclass(frozen=True)
class Checkpoint:
    family: str  # config.model_type
    files: Path  # the published non-weight files
    folder: Path  # a copy with config.json shrunk and random weights added
    vlm: VLM


def llava_files() -> Path:
    """The published LLaVA files, or skip, naming where they were expected."""
    if not (LLAVA_FILES / "config.json").is_file():
        pytest.skip(
            "the published llava-hf/llava-1.5-7b-hf files (Llama 2 licence, not vendored) are "
            "expected in ../shared/checkpoints/llava-1.5-7b-hf beside the clone; "
            f"{LLAVA_FILES.resolve()} is missing"
        )
    return LLAVA_FILES


def family_files(family: str) -> Path:
    return llava_files() if family == "llava" else QWEN_FILES


def scene() -> Image.Image:
    """800 x 500: a red ball bottom left, a blue box top right (the slow tier's scene)."""
    image = Image.new("RGB", (800, 500), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 300, 200, 440), fill=(220, 30, 30))
    draw.rectangle((560, 60, 720, 220), fill=(30, 60, 220))
    return image


@dataclass(frozen=True)
class Row:
    """One row a method encoded: the user text, its images, and the prompt the processor got."""

    text: str
    images: tuple[Image.Image, ...]
    prompt: str


@dataclass
class MethodRuns:
    family: str
    results: dict[str, Any] = field(default_factory=dict)  # run name -> its result
    rows: dict[str, list[Row]] = field(default_factory=dict)  # run name -> every row it encoded


class _ProcessorSpy:
    """Stands in for the processor: records the prompts whose image tokens it expands (the step
    of `adapter.encode_processed` that receives the rendered prompts), then delegates."""

    def __init__(self, processor: Any) -> None:
        self.wrapped = processor
        self.prompts: list[list[str]] = []

    def get_text_with_replacements(self, text: list[str], *args: Any, **kwargs: Any) -> Any:
        self.prompts.append(list(text))
        return self.wrapped.get_text_with_replacements(text, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


@contextmanager
def recording_rows(vlm: VLM) -> Iterator[list[Row]]:
    """Every row the adapter encodes while inside (its text, the images it was processed from,
    the prompt it rendered), whether through `encode` or from images processed once."""
    adapter = vlm.adapter
    encode_processed, process_image = adapter.encode_processed, adapter.process_image
    spy = _ProcessorSpy(adapter.processor)
    sources: dict[int, tuple[Any, Image.Image]] = {}  # id(processed) -> (processed, image)
    rows: list[Row] = []

    def processing(image: Image.Image, config: LaserConfig) -> Any:
        processed = process_image(image, config)
        sources[id(processed)] = (processed, image)  # kept alive: ids stay unique
        return processed

    def recording(texts: Any, processed_rows: Any) -> Any:
        before = len(spy.prompts)
        inputs = encode_processed(texts, processed_rows)
        assert len(spy.prompts) == before + 1, "expected one expansion per encode call"
        for text, row, prompt in zip(texts, processed_rows, spy.prompts[-1], strict=True):
            rows.append(Row(text, tuple(sources[id(p)][1] for p in row), prompt))
        return inputs

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(adapter, "process_image", processing)
        patch.setattr(adapter, "encode_processed", recording)
        patch.setattr(adapter, "processor", spy)
        yield rows
