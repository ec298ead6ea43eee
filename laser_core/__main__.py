"""Command line: `python -m laser_core IMAGE "QUESTION" [--model ID] [--method M] [--out DIR]`.

Prints the answer (and, for LASER, the chosen layer and the vanilla answer); saves the result
when `--out` is given. Errors are one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from transformers.utils import logging as hf_logging

from laser_core.config import LaserConfig
from laser_core.inputs import load_image
from laser_core.loading import ModelLoadError, load_model
from laser_core.methods import METHODS, run_method
from laser_core.pipeline import explain


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m laser_core", description=__doc__.split("\n")[0]
    )
    parser.add_argument("image", help="path of the image")
    parser.add_argument("question", help="the question about the image")
    parser.add_argument(
        "--model", default=None, help="hub id or local folder (default: the embedded model)"
    )
    parser.add_argument("--method", default="laser", choices=METHODS)
    parser.add_argument("--out", default=None, help="folder to save the LASER result into")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: best)")
    args = parser.parse_args(argv)
    if args.out is not None and args.method != "laser":
        parser.error("--out saves a LASER explanation: use it with --method laser")
    hf_logging.disable_progress_bar()
    try:
        load_image(args.image)  # fail fast on a bad path, before loading a model
        vlm = load_model(args.model, device=args.device)
        if args.method == "laser":
            result = explain(vlm, args.image, args.question, LaserConfig())
            print(f"answer: {result.answer}")
            print(
                f"chosen layer: {result.layer} (static layer {result.static_layer}; "
                f"VAT {'applied' if result.vat_applied else 'not applied'})"
            )
            print(f"vanilla answer: {result.baseline_answer}")
            if args.out is not None:
                print(f"saved: {result.save(args.out)}")
        else:
            outcome = run_method(vlm, args.image, args.question, args.method, LaserConfig())
            print(f"answer: {outcome.answer}")
            if outcome.layer is not None:
                print(f"crop layer: {outcome.layer}, box: {outcome.box}")
    except (ValueError, ModelLoadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
