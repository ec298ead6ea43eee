"""The tiny checkpoints reload offline like hub checkpoints and run forward and generate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image
from tiny_models import LLAVA_GRID, QWEN_BLOCK, QWEN_CHAT_TEMPLATE
from transformers import (
    AutoConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedModel,
    ProcessorMixin,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2_5_VLProcessor,
    Qwen2VLForConditionalGeneration,
    Qwen2VLProcessor,
)
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import (
    Qwen2VLImageProcessorPil,
    smart_resize,
)
from transformers.video_processing_utils import BaseVideoProcessor

from laser_core.adapters.qwen_processor import (
    Qwen2_5_VLImageOnlyProcessor,
    Qwen2VLImageOnlyProcessor,
    load_qwen_processor,
)

WIDTH, HEIGHT = 100, 70  # non-square test image, px
QUESTION = "What color is the cat?"
MODEL_CLASSES: dict[str, type[PreTrainedModel]] = {
    "llava": LlavaForConditionalGeneration,
    "qwen2_vl": Qwen2VLForConditionalGeneration,
    "qwen2_5_vl": Qwen2_5_VLForConditionalGeneration,
}
QWEN_OUTPUT_KEYS = {
    "input_ids",
    "attention_mask",
    "pixel_values",
    "image_grid_thw",
    "mm_token_type_ids",
}
STOCK_QWEN_PROCESSORS: dict[str, type[ProcessorMixin]] = {
    "qwen2_vl": Qwen2VLProcessor,
    "qwen2_5_vl": Qwen2_5_VLProcessor,
}


@pytest.fixture
def image() -> Image.Image:
    torch.manual_seed(0)
    pixels = torch.randint(0, 256, (HEIGHT, WIDTH, 3), dtype=torch.uint8)
    return Image.fromarray(pixels.numpy())


def _messages() -> list[dict[str, object]]:
    content = [{"type": "image"}, {"type": "text", "text": QUESTION}]
    return [{"role": "user", "content": content}]


def _load(path: Path) -> tuple[PreTrainedModel, ProcessorMixin]:
    model_type = AutoConfig.from_pretrained(path).model_type
    model = MODEL_CLASSES[model_type].from_pretrained(path).eval()
    if model_type == "llava":
        return model, LlavaProcessor.from_pretrained(path)
    return model, load_qwen_processor(path, model_type)


def _expected_visual_tokens(inputs: dict[str, torch.Tensor], model_type: str) -> int:
    if model_type == "llava":
        return LLAVA_GRID[0] * LLAVA_GRID[1]
    _, rows, cols = inputs["image_grid_thw"][0].tolist()  # in 14-px patches
    height, width = smart_resize(HEIGHT, WIDTH, factor=QWEN_BLOCK, min_pixels=1, max_pixels=10**9)
    assert (rows * 14, cols * 14) == (height, width)
    return (height // QWEN_BLOCK) * (width // QWEN_BLOCK)


def test_reload_forward_and_generate(tiny_model_path: Path, image: Image.Image) -> None:
    model, processor = _load(tiny_model_path)
    text = processor.apply_chat_template(_messages(), add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    n_visual = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert n_visual == _expected_visual_tokens(inputs, model.config.model_type)

    with torch.no_grad():
        logits = model(**inputs).logits  # [batch, query, vocab]
    assert logits.shape[:2] == inputs["input_ids"].shape
    assert torch.isfinite(logits).all()

    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 3


def test_llava_layout(tiny_llava_path: Path, image: Image.Image) -> None:
    processor = LlavaProcessor.from_pretrained(tiny_llava_path)
    text = processor.apply_chat_template(_messages(), add_generation_prompt=True, tokenize=False)
    assert text == f"USER: <image>\n{QUESTION} ASSISTANT:"
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    assert inputs["pixel_values"].shape == (1, 3, 84, 84)


@pytest.mark.parametrize("model_type", ["qwen2_vl", "qwen2_5_vl"])
def test_qwen_layout(model_type: str, request: pytest.FixtureRequest, image: Image.Image) -> None:
    path = request.getfixturevalue(f"tiny_{model_type}_path")
    processor = load_qwen_processor(path, model_type)
    text = processor.apply_chat_template(_messages(), add_generation_prompt=True, tokenize=False)
    expected_text = (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        f"{QUESTION}<|im_end|>\n<|im_start|>assistant\n"
    )
    assert text == expected_text
    ids = processor(text=[text], images=[image])["input_ids"][0]
    tokenizer = processor.tokenizer
    start = ids.index(tokenizer.convert_tokens_to_ids("<|vision_start|>"))
    end = ids.index(tokenizer.convert_tokens_to_ids("<|vision_end|>"))
    # 100 x 70 px -> smart_resize -> 112 x 56 px -> 4 x 2 merged 28-px blocks, contiguous.
    assert ids[start + 1 : end] == [processor.image_token_id] * 8


@pytest.mark.parametrize("model_type", ["qwen2_vl", "qwen2_5_vl"])
def test_qwen_processor_matches_stock(
    model_type: str,
    request: pytest.FixtureRequest,
    image: Image.Image,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = request.getfixturevalue(f"tiny_{model_type}_path")
    ours = load_qwen_processor(path, model_type)
    expected_class = {
        "qwen2_vl": Qwen2VLImageOnlyProcessor,
        "qwen2_5_vl": Qwen2_5_VLImageOnlyProcessor,
    }
    assert type(ours) is expected_class[model_type]
    assert type(ours.image_processor) is Qwen2VLImageProcessorPil

    # The stock processor needs a video processor; without torchvision its class check fails,
    # so give it an inert stand-in and skip the check.
    stock_class = STOCK_QWEN_PROCESSORS[model_type]
    monkeypatch.setattr(stock_class, "check_argument_for_proper_class", lambda *args: None)
    stock = stock_class(
        image_processor=ours.image_processor,
        tokenizer=ours.tokenizer,
        video_processor=BaseVideoProcessor(),
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    text = stock.apply_chat_template(_messages(), add_generation_prompt=True, tokenize=False)
    want = stock(text=[text], images=[image], return_tensors="pt")
    got = ours(text=[text], images=[image], return_tensors="pt")
    assert set(got) == set(want) == QWEN_OUTPUT_KEYS
    for key in want:
        assert torch.equal(got[key], want[key]), key

    content = [{"type": "image", "image": image}, {"type": "text", "text": QUESTION}]
    messages = [{"role": "user", "content": content}]
    via_template = ours.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    for key in want:
        assert torch.equal(via_template[key], want[key]), key


def test_load_qwen_processor_rejects_unknown_type(tiny_qwen2_vl_path: Path) -> None:
    model_type: Any = "llava"  # deliberately outside QwenModelType
    with pytest.raises(ValueError, match="qwen2_5_vl"):
        load_qwen_processor(tiny_qwen2_vl_path, model_type)


def test_hub_id_uses_same_path_offline() -> None:
    # Offline and uncached, a hub id fails inside the hub file lookup, not on a torchvision import.
    with pytest.raises(OSError):
        load_qwen_processor("Qwen/Qwen2-VL-2B-Instruct", "qwen2_vl")
