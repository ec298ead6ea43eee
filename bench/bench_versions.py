"""Timing script: the same calls on two versions of the library, for before/after figures.

    python bench/bench_versions.py save /tmp/versions                 # mid-size models, once
    git worktree add /tmp/before 9a35be5                              # the code before
    python bench/bench_versions.py time /tmp/versions --code /tmp/before > before.json
    python bench/bench_versions.py time /tmp/versions --code .           > after.json

`time` imports `laser_core` from `--code` (any version with `load_model`, `explain` and
`run_method`), loads the saved random models with it and prints, as JSON, the median CPU time
(one thread) of `explain`, `run_method("laser")`, `run_method("clvs")` and the Compare tab's five
methods (through `run_methods` where the version has it, else one `run_method` each).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

FAMILIES = ("llava", "qwen2_vl")
COMPARE = ("vanilla", "vicrop", "vcd", "laser", "clvs")
QUESTION = "What colour is the ball on the left?"


def save(folder: Path) -> None:
    """The latency benchmark's mid-size models (and their scenes) as checkpoint folders."""
    sys.path[:0] = [str(Path(__file__).resolve().parent)]
    import latency_models as models
    import torch

    models.quiet()
    for family in FAMILIES:
        vlm = models.build(family, "mid", torch.device("cpu"), torch.float32)
        vlm.model.save_pretrained(folder / family)
        vlm.processor.save_pretrained(folder / family)
        models.scene(family, "mid").save(folder / f"{family}.png")


def measure(folder: Path, code: Path, repeats: int) -> dict[str, Any]:
    sys.path.insert(0, str(code.resolve()))
    import torch
    from transformers.utils import logging

    torch.set_num_threads(1)
    logging.disable_progress_bar()
    logging.set_verbosity_error()
    out: dict[str, Any] = {"code": str(code.resolve())}
    for family in FAMILIES:
        out[family] = _family(folder, family, repeats)
    return out


def _family(folder: Path, family: str, repeats: int) -> dict[str, float]:
    from PIL import Image

    import laser_core  # from `--code`, first on the path

    vlm = laser_core.load_model(folder / family, device="cpu")
    vlm.model.generation_config.eos_token_id = None  # random weights: 8 tokens each
    image = Image.open(folder / f"{family}.png").convert("RGB")
    config = laser_core.LaserConfig(max_new_tokens=8)
    run = laser_core.run_method

    def compare() -> None:
        if hasattr(laser_core, "run_methods"):
            laser_core.run_methods(vlm, image, QUESTION, COMPARE, config)
        else:
            for method in COMPARE:
                run(vlm, image, QUESTION, method, config)

    items = {
        "explain": lambda: laser_core.explain(vlm, image, QUESTION, config),
        "run_method(laser)": lambda: run(vlm, image, QUESTION, "laser", config),
        "run_method(clvs)": lambda: run(vlm, image, QUESTION, "clvs", config),
        "compare (5 methods)": compare,
    }
    return {name: _median(fn, repeats) for name, fn in items.items()}


def _median(fn: Any, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("save", "time"))
    parser.add_argument("folder", type=Path)
    parser.add_argument("--code", type=Path, default=Path("."), help="the repository to time")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    if args.action == "save":
        save(args.folder)
    else:
        print(json.dumps(measure(args.folder, args.code, args.repeats), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
