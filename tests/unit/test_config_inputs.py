"""LaserConfig validation and input checking."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from laser_core import LaserConfig
from laser_core.inputs import check_question, load_image


def test_defaults_are_those_of_the_method() -> None:
    cfg = LaserConfig()
    assert (cfg.k_heads, cfg.crop_ratio, cfg.crop_min, cfg.k_patches) == (8, 0.5, 224, 0.05)
    assert (cfg.alpha, cfg.vat_mode, cfg.decoding, cfg.mask_fill) == (
        1.0,
        "adaptive",
        "greedy",
        "mean",
    )
    assert cfg.prompt_suffix == " Answer the question using a single word or phrase."
    assert (cfg.vcd_alpha, cfg.vcd_beta, cfg.vcd_noise_step) == (1.0, 0.1, 500)
    assert (cfg.clvs_lambda, cfg.clvs_gamma, cfg.clvs_delta) == (0.8, None, 0.5)  # gamma: family


@pytest.mark.parametrize(
    "field, value",
    [
        ("k_heads", 0),
        ("crop_ratio", 0.0),
        ("crop_ratio", 1.5),
        ("crop_min", 0),
        ("k_patches", 0),
        ("k_patches", 1.0),
        ("k_patches", True),
        ("alpha", -1.0),
        ("vat_mode", "sometimes"),
        ("decoding", "beam"),
        ("temperature", 0.0),
        ("max_new_tokens", 0),
        ("vcd_noise_step", 1000),
        ("vcd_beta", 2.0),
        ("clvs_lambda", 1.5),
        ("allowed_layers", ()),
        ("force_layer", -1),
        ("mask_fill", "white"),
    ],
)
def test_bad_values_name_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"LaserConfig.{field} must be"):
        replace(LaserConfig(), **{field: value})


def test_dict_round_trip() -> None:
    cfg = LaserConfig(allowed_layers=(3, 5), k_patches=7)
    assert LaserConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown LaserConfig fields: bogus"):
        LaserConfig.from_dict({"bogus": 1})


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "CMYK", "I;16", "I", "F", "1", "YCbCr"])
def test_every_mode_becomes_rgb(mode: str) -> None:
    image = Image.new(mode, (30, 20))
    out = load_image(image, min_side=14)
    assert out.mode == "RGB" and out.size == (30, 20)


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    image = Image.fromarray(np.full((20, 20), 65535, dtype=np.uint16))
    assert np.asarray(load_image(image))[0, 0].tolist() == [255, 255, 255]


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (20, 20), (255, 0, 0, 0))
    assert np.asarray(load_image(image))[0, 0].tolist() == [255, 255, 255]


def test_bad_images_get_clear_messages(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such image file"):
        load_image(tmp_path / "missing.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match="cannot read"):
        load_image(corrupt)
    with pytest.raises(ValueError, match="at least 14 pixels"):
        load_image(Image.new("RGB", (10, 10)), min_side=14)
    with pytest.raises(ValueError, match="at least 14 pixels"):
        load_image(Image.new("RGB", (1, 4000)), min_side=14)
    with pytest.raises(ValueError, match="aspect ratio"):
        load_image(Image.new("RGB", (20, 4100)), min_side=14)
    with pytest.raises(ValueError, match="PIL image or a file path"):
        load_image(42)  # type: ignore[arg-type]


def test_images_load_from_paths(tmp_path: Path) -> None:
    path = tmp_path / "ok.png"
    Image.new("P", (32, 16)).save(path)
    assert load_image(path).size == (32, 16)
    assert load_image(str(path)).mode == "RGB"


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_questions_are_refused(question: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        check_question(question)


def test_questions_are_normalised() -> None:
    assert check_question("  what   colour\nis it? ") == "what colour is it?"
    with pytest.raises(ValueError, match="must be text"):
        check_question(None)
