"""Command line: `python -m laser_core.bench toy [--n N] [--start S] [--out DIR] [--model ID]`.

Runs the toy benchmark on held-out scenes and writes `toy_bench.json` and `toy_bench.md` into
`--out`; prints the markdown tables.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from transformers.utils import logging as hf_logging

from laser_core.bench.toy import markdown, run_toy_bench, write_report
from laser_core.loading import load_model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m laser_core.bench", description=__doc__)
    commands = parser.add_subparsers(dest="bench", required=True)
    toy = commands.add_parser("toy", help="the synthetic-world benchmark (Tables 1, 2, Fig. 5)")
    toy.add_argument("--n", type=int, default=500, help="held-out scenes (>= 1)")
    toy.add_argument("--start", type=int, default=0, help="offset into the held-out seeds")
    toy.add_argument("--out", default="results/toy", help="output folder")
    toy.add_argument("--model", default=None, help="hub id or folder (default: embedded model)")
    toy.add_argument("--device", default=None, help="cuda, mps or cpu (default: best)")
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("--n must be >= 1")
    hf_logging.disable_progress_bar()
    vlm = load_model(args.model, device=args.device)
    report = run_toy_bench(vlm, n=args.n, start=args.start, log=lambda m: print(m, flush=True))
    json_path, md_path = write_report(report, args.out)
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
