"""`python -m laser_core.bench toy --n 5` runs on the embedded model and writes both reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laser_core.bench.__main__ import main
from laser_core.bench.toy import CEILING, MAPS, true_crop
from laser_core.config import LaserConfig
from laser_core.methods import METHODS
from laser_core.toy import scenes as world


def test_true_crop_follows_the_size_rule_and_holds_the_object() -> None:
    box = (10, 400, 80, 440)
    x0, y0, x1, y1 = true_crop(box, (448, 448), LaserConfig())
    assert (x1 - x0, y1 - y0) == (224, 224)
    assert (x0, y1) == (0, 448)
    assert true_crop((200, 200, 248, 248), (448, 448), LaserConfig()) == (112, 112, 336, 336)


def test_bench_toy_n5_writes_json_and_markdown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["toy", "--n", "5", "--out", str(tmp_path), "--device", "cpu"]) == 0
    report = json.loads((tmp_path / "toy_bench.json").read_text())
    assert report["n_scenes"] == 5
    records = report["records"]
    assert len(records) >= 5 * (len(world.KINDS) - 1)
    n_layers = report["n_layers"]
    for record in records:
        assert set(METHODS) <= set(record["answers"])
        assert (CEILING in record["answers"]) == (record["box"] is not None)
        assert 0 <= record["layer"] < n_layers
        if record["box"] is not None:
            assert set(record["shares"]) == set(MAPS)
            assert all(0.0 <= v <= 1.0 + 1e-9 for v in record["shares"].values())
    summary = report["summary"]
    assert sum(summary["layer_counts"]["all"]) == len(records)
    assert summary["accuracy"]["vanilla"]["all"]["n"] == len(records)
    text = (tmp_path / "toy_bench.md").read_text()
    for heading in ("Table 1", "Table 2", "Figure 5"):
        assert heading in text
    assert "Table 1" in capsys.readouterr().out
