"""The latency script runs end to end (tiny shapes): every item timed, floors and ratios reported.

Timings are never asserted (this machine is shared); the script is what measures them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_latency_reports_every_item(tmp_path: Path) -> None:
    command = [
        sys.executable,
        str(ROOT / "bench" / "bench_latency.py"),
        "--shape", "tiny", "--models", "qwen2_vl", "--repeats", "1", "--tokens", "2",
        "--no-memory", "--out", str(tmp_path),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    report = json.loads((tmp_path / "cpu-tiny.json").read_text())
    entry = report["models"]["qwen2_vl"]
    names = set(entry["times"])
    assert {"vanilla", "explain", "run_methods(all)", "anchors: LASER's passes"} <= names
    assert all(f"run_method({m})" in names for m in ("vanilla", "vicrop", "vcd", "laser", "clvs"))
    assert set(entry["floors"]) == {"D(I, q)", "D(I+, I-)", "F", "F explain"}
    assert entry["shared_prefix"] > entry["image_tokens"]  # the image lies inside the prefix
    assert entry["captured_mb"]["ratio"] > 1
    table = (tmp_path / "cpu-tiny.md").read_text()
    assert "| run_method(laser) |" in table and "ours vs the anchors' way" in table
