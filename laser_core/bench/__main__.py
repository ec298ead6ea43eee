"""Command line: `python -m laser_core.bench {toy,textvqa,pope,aokvqa,refcoco} ...`.

toy       the synthetic-world benchmark on held-out scenes (`toy_bench.json`, `toy_bench.md`)
textvqa   TextVQA val: `--data TextVQA_0.5.1_val.json --images train_images/`
pope      POPE: `--data coco_pope_random.json [coco_pope_popular.json ...] --images val2014/`
aokvqa    A-OKVQA val, Direct Answer: `--data aokvqa_v1p0_val.json --images val2017/`
refcoco   RefCOCO(+/g) attention aggregation: `--data refcoco/ --images train2014/`, or a
          JSON-lines file {image, expression, bbox: [x, y, w, h]} of your own

The four paper benchmarks write `records.jsonl`, `summary.json` and `table.md` into `--out` and
resume from what is there. Several processes: the same command under `accelerate launch` (one
GPU each) or `torchrun --nproc_per_node N -m laser_core.bench ...` (CPU processes).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from transformers.utils import logging as hf_logging

from laser_core.bench.datasets import (
    DataError,
    Query,
    read_aokvqa,
    read_grounding_jsonl,
    read_pope,
    read_refer,
    read_textvqa,
)
from laser_core.bench.runner import DEFAULT_METHODS, RunSpec, end_processes, run_benchmark
from laser_core.bench.tables import markdown as run_markdown
from laser_core.bench.toy import markdown, run_toy_bench, write_report
from laser_core.config import LaserConfig
from laser_core.loading import ModelLoadError, load_model
from laser_core.methods import METHODS

_REFCOCO_NO_METHODS = (
    "--methods does not apply to refcoco: it measures where the maps of one LASER pass put "
    "their mass (raw and relative at the static layer, contrastive at l*), not answers"
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    if args.bench == "toy":
        return _toy(parser, args)
    if args.bench == "refcoco" and args.methods is not None:
        parser.error(_REFCOCO_NO_METHODS)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be >= 1")
    try:
        spec = RunSpec(
            args.bench,
            Path(args.out),
            methods=_methods(parser, args.methods),
            config=_config(args),
            model=args.model,
            device=args.device,
            progress=not args.no_progress,
        )
        summary = run_benchmark(spec, _queries(args))
    except (ValueError, ModelLoadError, OSError) as error:  # DataError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        end_processes()
    if summary is not None:  # the main process
        print(run_markdown(summary))
        print(f"wrote {args.out}/records.jsonl, summary.json and table.md")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m laser_core.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="bench", required=True)
    toy = commands.add_parser("toy", help="the synthetic-world benchmark (Tables 1, 2, Fig. 5)")
    toy.add_argument("--n", type=int, default=500, help="held-out scenes (>= 1)")
    toy.add_argument("--start", type=int, default=0, help="offset into the held-out seeds")
    toy.add_argument("--out", default="results/toy", help="output folder")
    toy.add_argument("--model", default=None, help="hub id or folder (default: embedded model)")
    toy.add_argument("--device", default=None, help="cuda, mps or cpu (default: best)")
    helps = {
        "textvqa": ("TextVQA accuracy (Table 1)", "TextVQA_0.5.1_val.json", "its train_images/"),
        "pope": (
            "POPE accuracy, F1 per split (Table 1)",
            "POPE JSON-lines question files (coco_pope_random.json ...), one or more",
            "the COCO val2014/ images",
        ),
        "aokvqa": (
            "A-OKVQA Direct Answer accuracy (Table 1)",
            "aokvqa_v1p0_val.json",
            "COCO val2017/",
        ),
        "refcoco": (
            "attention aggregation on RefCOCO / RefCOCO+ / RefCOCOg (Table 2)",
            "the refer toolkit's refs(unc).p / refs(umd).p (instances.json beside it) "
            "or their folder, or a JSON-lines file {image, expression, bbox [x,y,w,h]}",
            "COCO train2014/ (or the folder the JSON lines' images are relative to)",
        ),
    }
    for name, (title, data, images) in helps.items():
        sub = commands.add_parser(name, help=title, description=title)
        sub.add_argument("--data", required=True, nargs="+" if name == "pope" else None, help=data)
        sub.add_argument("--images", required=True, help=f"image folder: {images}")
        sub.add_argument("--out", required=True, help="output folder (a rerun resumes it)")
        if name == "refcoco":
            sub.add_argument("--methods", default=None, help="not used: " + _REFCOCO_NO_METHODS)
            sub.add_argument("--split", default="val", help="refer split (default val)")
            sub.add_argument(
                "--split-by", default=None, help="unc, umd or google (default: umd for RefCOCOg)"
            )
        else:
            sub.add_argument(
                "--methods",
                default=None,
                help=f"comma-separated, from {','.join(METHODS)} "
                f"(default {','.join(DEFAULT_METHODS)})",
            )
        sub.add_argument("--limit", type=int, default=None, help="first N questions of each file")
        sub.add_argument("--model", default=None, help="hub id or folder (default: embedded)")
        sub.add_argument("--device", default=None, help="cuda, mps or cpu (default: best)")
        sub.add_argument(
            "--decoding",
            choices=("greedy", "sample"),
            default=None,
            help="greedy (default) or sample (the paper's Table 1: temperature 1)",
        )
        sub.add_argument("--temperature", type=float, default=None, help="sampling temperature")
        sub.add_argument("--seed", type=int, default=None, help="base of the per-question seeds")
        sub.add_argument(
            "--max-new-tokens",
            type=int,
            default=None,
            help="answer length cap (default: the config's 16; refcoco: 1, its maps need none)",
        )
        sub.add_argument("--config", default=None, help="JSON file of LaserConfig fields")
        sub.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _toy(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.n < 1:
        parser.error("--n must be >= 1")
    vlm = load_model(args.model, device=args.device)
    report = run_toy_bench(vlm, n=args.n, start=args.start, log=lambda m: print(m, flush=True))
    json_path, md_path = write_report(report, args.out)
    print(markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


def _methods(parser: argparse.ArgumentParser, text: str | None) -> tuple[str, ...]:
    if text is None:
        return DEFAULT_METHODS
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names or len(set(names)) != len(names):
        parser.error(f"--methods takes distinct names from {','.join(METHODS)}, got {text!r}")
    return names


def _config(args: argparse.Namespace) -> LaserConfig:
    config = LaserConfig()
    if args.config is not None:
        path = Path(args.config)
        try:
            config = LaserConfig.from_dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError, TypeError) as error:
            raise DataError(f"{path}: not a JSON object of LaserConfig fields ({error})") from error
    overrides = {
        "decoding": args.decoding,
        "temperature": args.temperature,
        "seed": args.seed,
        "max_new_tokens": args.max_new_tokens,
    }
    if args.bench == "refcoco" and args.max_new_tokens is None:
        overrides["max_new_tokens"] = 1  # the maps come from the prefills; the answer is unused
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def _queries(args: argparse.Namespace) -> list[Query]:
    limit = args.limit
    if args.bench == "pope":
        return [q for f in args.data for q in read_pope([f], args.images)[:limit]]
    if args.bench == "textvqa":
        return read_textvqa(args.data, args.images)[:limit]
    if args.bench == "aokvqa":
        return read_aokvqa(args.data, args.images)[:limit]
    if Path(args.data).suffix in (".jsonl", ".json"):
        return read_grounding_jsonl(args.data, args.images)[:limit]
    return read_refer(args.data, args.images, split=args.split, split_by=args.split_by)[:limit]


if __name__ == "__main__":
    sys.exit(main())
