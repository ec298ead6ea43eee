"""Processor and model of the toy LLaVA: word tokenizer, 64-px CLIP image path, architecture.

A tiny model of the real LLaVA architecture (CLIP vision tower + Llama text model), so the
library's LLaVA adapter, capture and app run on it unchanged.
"""

from __future__ import annotations

from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor
from transformers.models.clip import CLIPImageProcessorPil

from laser_core.toy import scenes as W
from laser_core.toy.tokenizer import build_word_tokenizer

VIEW = 64  # model input side, px
PATCH = 4  # vision patch side, px -> 16 x 16 = 256 visual tokens
GRID = VIEW // PATCH  # visual tokens per side
MAX_POSITIONS = 1024  # ViCrop's answer holds two images (2 x 256 tokens) plus the text
IMAGE_TOKEN = "<image>"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}user : "
    "{% if message['content'] is string %}{{ message['content'] }} {% else %}"
    # The question goes BEFORE the image tokens, so image tokens can attend to it.
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }} {% endif %}"
    "{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}<image> {% endif %}"
    "{% endfor %}{% endif %}"
    "{% else %}assistant : "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}</s> "
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}assistant :{% endif %}"
)


def build_processor() -> LlavaProcessor:
    """Word-level tokenizer over the toy vocabulary plus a CLIP image processor at ``VIEW`` px."""
    tokenizer = build_word_tokenizer(
        W.vocabulary(), special_tokens=[IMAGE_TOKEN], chat_template=CHAT_TEMPLATE
    )
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": VIEW}, crop_size={"height": VIEW, "width": VIEW}
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    )


def build_model(
    processor: LlavaProcessor,
    *,
    hidden: int,
    layers: int,
    vision_hidden: int,
    vision_layers: int,
) -> LlavaForConditionalGeneration:
    """A randomly initialised toy LLaVA (draws from torch's global RNG: seed it first).

    Args:
        processor: From `build_processor`; gives the vocabulary and special token ids.
        hidden: Llama hidden size (4 heads; MLP 3x).
        layers: Llama decoder layers.
        vision_hidden: CLIP hidden size (4 heads; MLP 4x).
        vision_layers: CLIP encoder layers.
    """
    tok = processor.tokenizer
    config = LlavaConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": vision_hidden,
            "intermediate_size": 4 * vision_hidden,
            "num_hidden_layers": vision_layers,
            "num_attention_heads": 4,
            "image_size": VIEW,
            "patch_size": PATCH,
        },
        text_config={
            "model_type": "llama",
            "hidden_size": hidden,
            "intermediate_size": 3 * hidden,
            "num_hidden_layers": layers,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "vocab_size": len(tok),
            "max_position_embeddings": MAX_POSITIONS,
            "tie_word_embeddings": False,
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.eos_token_id,
            "eos_token_id": tok.eos_token_id,
        },
        image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    model = LlavaForConditionalGeneration(config)
    gc = model.generation_config
    gc.eos_token_id, gc.pad_token_id, gc.bos_token_id = tok.eos_token_id, tok.pad_token_id, None
    gc.max_new_tokens, gc.do_sample = 8, False
    return model
