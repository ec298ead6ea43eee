"""ViCrop on the three tiny architectures: the adaptive box and the two-image answer."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from PIL import Image

from laser_core import VLM, LaserConfig, run_method
from laser_core.stages import encode_checked

QUESTION = "what is on the left?"


def test_a_two_image_turn_holds_both_images_then_the_question_once(
    vlm: VLM, photo: Image.Image
) -> None:
    crop = photo.crop((10, 20, 130, 110))  # another size: Qwen gives it its own grid
    text = QUESTION + LaserConfig().prompt_suffix
    prompt = vlm.adapter.prompt(text, n_images=2)
    assert prompt.count(text) == 1 and prompt.index(text) > 0
    one_image = vlm.adapter.prompt(text)
    marker = vlm.processor.image_token
    assert prompt.count(marker) == 2 * one_image.count(marker) == 2
    inputs, geometries = encode_checked(vlm, [text], [[photo, crop]], LaserConfig())
    assert [g.image_size for g in geometries] == [photo.size, crop.size]
    n_visual = sum(g.grid[0] * g.grid[1] for g in geometries)
    assert int(vlm.adapter.visual_mask(inputs).sum()) == n_visual
    alone = [encode_checked(vlm, [text], [image], LaserConfig())[1][0] for image in (photo, crop)]
    assert [g.grid for g in geometries] == [g.grid for g in alone]


def test_vicrop_answers_from_the_original_and_the_crop(
    vlm: VLM, photo: Image.Image, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[list[str], list[int]]] = []
    encode = vlm.adapter.encode_processed

    def recording(texts: list[str], rows: list[list[Any]]) -> Any:
        calls.append((list(texts), [len(row) for row in rows]))
        return encode(texts, rows)

    monkeypatch.setattr(vlm.adapter, "encode_processed", recording)
    result = run_method(vlm, photo, QUESTION, "vicrop", LaserConfig(max_new_tokens=3))
    texts, images_per_row = calls[-1]  # the answer's turn: one row, the image then the crop
    assert len(texts) == 1 and texts[0].startswith(QUESTION) and images_per_row == [2]
    x0, y0, x1, y1 = result.box
    assert 0 <= x0 < x1 <= photo.width and 0 <= y0 < y1 <= photo.height
    assert result.input_image.size == (x1 - x0, y1 - y0)
    info = result.extras["vicrop"]
    assert info["ratio"] in (1.0, 1.2, 1.4, 1.6, 1.8, 2.0) and info["sharpness"] >= 0
    assert [g.image_size for g in result.extras["geometries"]] == [
        photo.size,
        result.input_image.size,
    ]


def test_vicrop_is_deterministic(vlm: VLM, photo: Image.Image) -> None:
    config = LaserConfig(max_new_tokens=3)
    first, second = (run_method(vlm, photo, QUESTION, "vicrop", config) for _ in range(2))
    assert (first.answer, first.box, first.extras["vicrop"]) == (
        second.answer,
        second.box,
        second.extras["vicrop"],
    )
    assert torch.equal(torch.as_tensor(first.map), torch.as_tensor(second.map))
