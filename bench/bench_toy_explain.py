"""How long `explain` takes on the embedded model: the app's first answer on its own model.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_toy_explain.py [--model assets/models/laser-toy]

One thread; the process's CPU time (robust to other jobs on shared cores), median of
``--repeats`` runs after one warm-up, on the first example row of ``assets/examples``. Also
prints the grid and the number of visual tokens, so the figure is read with its input size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from laser_core import explain, load_model  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "assets" / "models" / "laser-toy"))
    parser.add_argument("--examples", default=str(ROOT / "assets" / "examples"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    vlm = load_model(args.model, device="cpu")
    row = json.loads((Path(args.examples) / "examples.json").read_text())[0]
    image = Path(args.examples) / row["image"]
    result = explain(vlm, image, row["question"])  # warm-up
    times = []
    for _ in range(args.repeats):
        start = time.process_time()
        explain(vlm, image, row["question"])
        times.append(time.process_time() - start)
    rows, cols = result.grid
    print(
        f"explain on {Path(args.model).name} ({rows} x {cols} = {rows * cols} visual tokens, "
        f"{result.attn_query.shape[0]} layers), one thread: median {statistics.median(times):.3f}"
        f" s CPU, min {min(times):.3f}, max {max(times):.3f} over {args.repeats} runs",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
