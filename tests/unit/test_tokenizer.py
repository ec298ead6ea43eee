"""Unit tests for the toy word-level tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from laser_core.toy.tokenizer import build_word_tokenizer

TEMPLATE = (
    "{% for message in messages %}USER: <image>\n{{ message['content'] }}{% endfor %} ASSISTANT:"
)


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerFast:
    return build_word_tokenizer(
        ["What", "color", "is", "the", "cat", "red"],
        special_tokens=["<image>", "<|image_pad|>"],
        chat_template=TEMPLATE,
    )


def test_splits_punctuation_and_lowercases(tokenizer: PreTrainedTokenizerFast) -> None:
    ids = tokenizer("What color is the CAT? red?").input_ids
    expected = ["what", "color", "is", "the", "cat", "?", "red", "?"]
    assert tokenizer.convert_ids_to_tokens(ids) == expected


def test_unknown_words_map_to_unk(tokenizer: PreTrainedTokenizerFast) -> None:
    ids = tokenizer("the zebra").input_ids
    assert ids[1] == tokenizer.unk_token_id
    assert tokenizer.convert_ids_to_tokens(ids) == ["the", "[UNK]"]


def test_special_tokens_stay_whole(tokenizer: PreTrainedTokenizerFast) -> None:
    ids = tokenizer("<image>red<|image_pad|><|image_pad|>").input_ids
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    pad_id = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert ids == [image_id, tokenizer.convert_tokens_to_ids("red"), pad_id, pad_id]
    assert tokenizer.unk_token_id not in (image_id, pad_id)


def test_core_token_ids(tokenizer: PreTrainedTokenizerFast) -> None:
    assert (tokenizer.pad_token_id, tokenizer.unk_token_id, tokenizer.eos_token_id) == (0, 1, 2)


def test_chat_template(tokenizer: PreTrainedTokenizerFast) -> None:
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What color?"}], tokenize=False
    )
    assert text == "USER: <image>\nWhat color? ASSISTANT:"


def test_rejects_words_with_punctuation() -> None:
    with pytest.raises(ValueError, match="red"):
        build_word_tokenizer(["red?"], special_tokens=[], chat_template=TEMPLATE)


def test_save_and_reload_offline(
    tokenizer: PreTrainedTokenizerFast, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer.save_pretrained(tmp_path)
    text = "What color is the <image> zebra?"
    for loader in (PreTrainedTokenizerFast, AutoTokenizer):
        reloaded = loader.from_pretrained(tmp_path)
        assert reloaded(text).input_ids == tokenizer(text).input_ids
        assert reloaded.chat_template == TEMPLATE
        assert reloaded.convert_ids_to_tokens(reloaded.unk_token_id) == "[UNK]"
    assert os.environ["HF_HUB_OFFLINE"] == "1"
