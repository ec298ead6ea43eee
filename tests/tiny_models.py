"""Tiny, seeded, random-init checkpoints of the real LLaVA-1.5, Qwen2-VL and Qwen2.5-VL classes.

Each builder writes a complete checkpoint folder (model weights, config, generation config,
tokenizer, image processor, chat template) with ``save_pretrained`` and returns its path, so
tests load it exactly like a hub checkpoint, offline. Weights are random (``torch.manual_seed(0)``),
float32, under 2 MB on disk; a build takes well under a second.

Shapes (text side shared by all three: hidden 64, 3 layers, 4 heads, 2 key-value heads, so
grouped-query attention is exercised; head_dim 16):

- LLaVA: CLIP vision tower (2 layers, hidden 32) on 84x84 inputs with 14-px patches, so every
  image becomes 6 x 6 = 36 ``<image>`` tokens (CLS dropped by the "default" strategy).
- Qwen2-VL / Qwen2.5-VL: 14-px patches merged 2 x 2 into 28-px blocks; images are resized by
  ``smart_resize`` to multiples of 28 within ``MIN_PIXELS``..``MAX_PIXELS``, giving
  (h / 28) * (w / 28) ``<|image_pad|>`` tokens, e.g. 100 x 70 (w x h) -> 112 x 56 -> 2 x 4 = 8.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
)
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from laser_core.adapters.qwen_processor import (
    Qwen2_5_VLImageOnlyProcessor,
    Qwen2VLImageOnlyProcessor,
)
from laser_core.toy.tokenizer import build_word_tokenizer

SEED = 0
LLAVA_IMAGE_SIZE = 84  # px; CLIP input side (the real model uses 336)
PATCH_SIZE = 14  # px; vision patch side, all three models
LLAVA_GRID = (6, 6)  # (rows, cols) of LLaVA visual tokens = 84 / 14
QWEN_MERGE_SIZE = 2  # patches merged per side into one visual token (28-px blocks)
QWEN_BLOCK = PATCH_SIZE * QWEN_MERGE_SIZE  # 28 px per visual token side
MIN_PIXELS = QWEN_BLOCK * QWEN_BLOCK * 4  # at least 4 visual tokens per image
MAX_PIXELS = QWEN_BLOCK * QWEN_BLOCK * 64  # at most 64 visual tokens per image

# Shared text-decoder shape: small but with grouped-query attention (4 query / 2 kv heads).
TEXT_SHAPE = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
}
# mRoPE splits the rotary half-dim (head_dim / 2 = 8) over (time, height, width).
MROPE_SECTION = [2, 3, 3]

WORDS = """
a an the this that these those it its there here what which who where when why how is are was
were be been am do does did can could will would should may might must has have had not no yes
and or but if then than so of in on at to from with without by for about into over under above
below behind near next between left right top bottom middle center front back side up down
i you he she we they me him her us them my your his our their one two three four five six seven
eight nine ten many much more most few some all any each every other only same different
red orange yellow green blue purple pink brown black white gray grey gold silver color colour
colors big small large little tall short long wide round square circle triangle shape shapes
bright dark light old new young hot cold wet dry open closed empty full
cat dog bird fish horse cow sheep animal person man woman boy girl child people face hand eye
car bus truck bike bicycle boat train plane road street sign light tree flower grass sky cloud
sun moon water sea river beach mountain house building window door wall floor roof room table
chair bed cup bottle plate bowl food apple banana orange pizza cake book phone clock ball box
bag hat shirt picture photo image scene object thing things part kind
see look show describe tell count find say answer question think know holding wearing sitting
standing running eating playing using doing made looks seen shown
number letter word text written name many total kind type
user assistant system please thanks ok
""".split()

LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}"
    "{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' ' }}{% endfor %}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)


def build_tiny_llava(folder: str | Path) -> Path:
    """Build and save a tiny ``LlavaForConditionalGeneration`` (CLIP + Llama) and its processor.

    Args:
        folder: Output folder; created if missing.

    Returns:
        ``folder`` as a ``Path``; loadable with ``LlavaForConditionalGeneration.from_pretrained``
        and ``LlavaProcessor.from_pretrained``. Every image yields 36 ``<image>`` tokens.
    """
    folder = Path(folder)
    tokenizer = build_word_tokenizer(
        WORDS, special_tokens=["<image>"], chat_template=LLAVA_CHAT_TEMPLATE, eos_token="</s>"
    )
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": LLAVA_IMAGE_SIZE},
        crop_size={"height": LLAVA_IMAGE_SIZE, "width": LLAVA_IMAGE_SIZE},
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's CLS token, dropped by the "default" strategy
        chat_template=LLAVA_CHAT_TEMPLATE,
    )
    config = LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": LLAVA_IMAGE_SIZE,
            "patch_size": PATCH_SIZE,
            "projection_dim": 32,
        },
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), **TEXT_SHAPE},
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_seq_length=LLAVA_GRID[0] * LLAVA_GRID[1],
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
    )
    torch.manual_seed(SEED)
    model = LlavaForConditionalGeneration(config)
    return _save(model, processor, tokenizer, folder)


def build_tiny_qwen2_vl(folder: str | Path) -> Path:
    """Build and save a tiny ``Qwen2VLForConditionalGeneration`` and its image-only processor.

    Args:
        folder: Output folder; created if missing.

    Returns:
        ``folder`` as a ``Path``; loadable with ``Qwen2VLForConditionalGeneration.from_pretrained``
        and ``load_qwen_processor(folder, "qwen2_vl")``.
    """
    folder = Path(folder)
    tokenizer = _qwen_tokenizer()
    vision_config = {
        "depth": 2,
        "embed_dim": 32,
        "hidden_size": TEXT_SHAPE["hidden_size"],  # merger output = text hidden size
        "num_heads": 2,
        "mlp_ratio": 2,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": QWEN_MERGE_SIZE,
        "temporal_patch_size": 2,
    }
    return _build_qwen(
        folder,
        tokenizer,
        vision_config,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageOnlyProcessor,
    )


def build_tiny_qwen2_5_vl(folder: str | Path) -> Path:
    """Build and save a tiny ``Qwen2_5_VLForConditionalGeneration`` and its image-only processor.

    The vision tower has 2 blocks: block 0 uses window attention (56-px windows, i.e. 2 x 2
    merged blocks), block 1 full attention, as in the real model's mix.

    Args:
        folder: Output folder; created if missing.

    Returns:
        ``folder`` as a ``Path``; loadable with
        ``Qwen2_5_VLForConditionalGeneration.from_pretrained`` and
        ``load_qwen_processor(folder, "qwen2_5_vl")``.
    """
    folder = Path(folder)
    tokenizer = _qwen_tokenizer()
    vision_config = {
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": TEXT_SHAPE["hidden_size"],  # merger output = text hidden size
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": QWEN_MERGE_SIZE,
        "temporal_patch_size": 2,
        "window_size": 2 * QWEN_BLOCK,
        "fullatt_block_indexes": [1],
    }
    return _build_qwen(
        folder,
        tokenizer,
        vision_config,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLImageOnlyProcessor,
    )


def _build_qwen(
    folder: Path,
    tokenizer: PreTrainedTokenizerFast,
    vision_config: dict[str, object],
    config_class: type,
    model_class: type,
    processor_class: type,
) -> Path:
    """Shared tail of the Qwen builders: config, seeded random weights, processor, save."""
    config = config_class(
        text_config=_qwen_text_config(tokenizer),
        vision_config=vision_config,
        **_qwen_token_ids(tokenizer),
    )
    torch.manual_seed(SEED)
    model = model_class(config)
    processor = processor_class(
        image_processor=_qwen_image_processor(),
        tokenizer=tokenizer,
        chat_template=QWEN_CHAT_TEMPLATE,
    )
    return _save(model, processor, tokenizer, folder)


def _qwen_tokenizer() -> PreTrainedTokenizerFast:
    return build_word_tokenizer(
        WORDS,
        special_tokens=QWEN_SPECIAL_TOKENS,
        chat_template=QWEN_CHAT_TEMPLATE,
        eos_token="<|im_end|>",
    )


def _qwen_image_processor() -> Qwen2VLImageProcessorPil:
    return Qwen2VLImageProcessorPil(
        min_pixels=MIN_PIXELS,
        max_pixels=MAX_PIXELS,
        patch_size=PATCH_SIZE,
        merge_size=QWEN_MERGE_SIZE,
        temporal_patch_size=2,
    )


def _qwen_text_config(tokenizer: PreTrainedTokenizerFast) -> dict[str, object]:
    return {
        **TEXT_SHAPE,
        "vocab_size": len(tokenizer),
        "rope_parameters": {"rope_type": "default", "mrope_section": MROPE_SECTION},
        "bos_token_id": None,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _qwen_token_ids(tokenizer: PreTrainedTokenizerFast) -> dict[str, int]:
    """Multimodal token ids; Qwen reads them from the top-level config."""
    names = {
        "image_token_id": "<|image_pad|>",
        "video_token_id": "<|video_pad|>",
        "vision_start_token_id": "<|vision_start|>",
        "vision_end_token_id": "<|vision_end|>",
    }
    return {key: tokenizer.convert_tokens_to_ids(token) for key, token in names.items()}


def _save(
    model: PreTrainedModel,
    processor: LlavaProcessor | Qwen2VLImageOnlyProcessor | Qwen2_5_VLImageOnlyProcessor,
    tokenizer: PreTrainedTokenizerFast,
    folder: Path,
) -> Path:
    """Set generation ids, save model + processor, return ``folder``."""
    model = model.eval().to(torch.float32)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = None
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
