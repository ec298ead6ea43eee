"""Loading errors, the adapter registry, and the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from laser_core import ModelLoadError, load_model
from laser_core.__main__ import main
from laser_core.adapters import ADAPTERS, adapter_class
from laser_core.loading import pick_dtype


def test_registry_serves_the_three_families() -> None:
    assert set(ADAPTERS) == {"llava", "qwen2_vl", "qwen2_5_vl"}
    with pytest.raises(ValueError, match="supported: llava, qwen2_5_vl, qwen2_vl"):
        adapter_class("blip")


def test_unknown_architecture_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="unsupported model type 'bert'"):
        load_model(tmp_path)


def test_missing_weights_get_a_plain_message(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="could not load the model") as info:
        load_model("nobody/no-such-model-anywhere")
    assert "offline" in str(info.value) and "\n" not in str(info.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match="folder"):
        load_model(empty)


def test_contract_of_every_loaded_adapter(tiny_vlms: dict) -> None:
    for name, vlm in tiny_vlms.items():
        adapter = vlm.adapter
        assert vlm.model.config.model_type in type(adapter).model_types
        assert len(adapter.attention_modules()) == adapter.n_layers
        assert vlm.model.config.text_config._attn_implementation == "laser_last_row"
        assert vlm.model.generation_config.repetition_penalty in (None, 1.0)
        assert adapter.static_layer() == adapter.n_layers // 2, name
        assert len(adapter.mean_color) == 3


def test_dtype_choice() -> None:
    import torch

    assert pick_dtype(torch.device("cpu")) == torch.float32
    assert pick_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16
    with pytest.raises(ValueError, match="unknown dtype"):
        pick_dtype(torch.device("cpu"), "float7")


def test_cli_prints_and_saves(
    tiny_llava_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    image = tmp_path / "scene.png"
    Image.new("RGB", (120, 80), (30, 60, 200)).save(image)
    assert (
        main(
            [
                str(image),
                "what colour?",
                "--model",
                str(tiny_llava_path),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "answer:" in printed and "chosen layer:" in printed
    assert (tmp_path / "out" / "result.json").is_file()
    assert (
        main([str(image), "what colour?", "--model", str(tiny_llava_path), "--method", "vicrop"])
        == 0
    )
    assert "crop layer:" in capsys.readouterr().out


def test_cli_reports_errors_in_one_line(
    tiny_llava_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["/no/such.png", "what?", "--model", str(tiny_llava_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such image file") and err.count("\n") == 1
