"""Train the embedded toy LLaVA (``assets/models/laser-toy``) on the synthetic world.

A tiny model of the real LLaVA architecture (CLIP vision tower + Llama text model) is built from
scratch and trained in three phases, on a GPU when one is present (``--device``), else on the
CPU:

1. ``vision``: the CLIP tower alone learns per-patch colour / shape / mark labels and each
   patch's place (a stand-in for CLIP pre-training; end-to-end training from random weights
   stayed at chance).
2. ``llava``: tower frozen; the projector starts as "vision heads -> word embeddings" (see
   ``init_projector``) and, with the language model, learns to answer questions, with a
   curriculum from 1-2 to 1-4 objects, full views and zoomed crops around objects (the crop
   the LASER method takes), ViCrop's two-image turns, plus query-free and generic prompts so
   those are in distribution. A grounding loss teaches two heads of one layer to look at the
   asked object (``tune.GroundingLoss``).
3. ``relations``, in stages (``--relation-steps``, one value per stage; each stage starts
   afresh from the weights the last left): phase 2's turns (with shape questions more often)
   mixed with relation questions, with three probes that ask the language model to keep each
   image token's place and to bring the asked objects' places and the relation word to where it
   answers (``relations``). Default: 600 steps with 70 % relation questions and the tower at
   half the learning rate, then 600 with 30 % and the tower frozen, then 300 with 10 %, frozen.
   ``--init-from`` runs it alone from a saved model; ``--relation-steps 0`` skips it.

Forward passes run in bfloat16 on a CPU that computes it natively, else in float32
(``--precision``). Seeded and resumable: checkpoints go to ``.train/`` (git-ignored); re-running
the same command continues from the last one. The pieces live in ``scripts/toy_training/``.
Usage::

    OMP_WAIT_POLICY=PASSIVE python scripts/train_embedded.py    # CPU: 77 min (float32: ~2 h 25)
    python scripts/train_embedded.py --device cuda --workers 3  # GPU: a few minutes

The model card (``assets/models/laser-toy/README.md``) gives the command, time and accuracy of
the shipped weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from scripts.toy_training.data import (  # noqa: E402
    CROP_KINDS_V2,
    FULL_KINDS_V2,
    RELATION_CROP_KINDS,
    RELATION_FULL_KINDS,
    TWO_IMAGE_EVERY,
)
from scripts.toy_training.examples import SCENES  # noqa: E402
from scripts.toy_training.run import run_training  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; ``argv`` None = ``sys.argv[1:]``."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--vision-steps", type=int, default=800)
    ap.add_argument("--vision-batch", type=int, default=32)
    ap.add_argument("--vision-lr", type=float, default=2e-3)
    ap.add_argument("--llava-steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument(
        "--tower-lr-scale",
        type=float,
        default=0.0,
        help="LLaVA phase: tower learning rate / --lr (0 = frozen tower)",
    )
    ap.add_argument("--full-kinds", default=",".join(FULL_KINDS_V2), help="full-view question mix")
    ap.add_argument(
        "--crop-kinds", default=",".join(CROP_KINDS_V2), help="zoomed-view question mix"
    )
    ap.add_argument(
        "--projector-init",
        choices=["random", "heads"],
        default="heads",
        help="LLaVA phase: projector from random, or from the vision heads + word embeddings",
    )
    ap.add_argument("--init-gain", type=float, default=0.2, help="see init_projector")
    ap.add_argument(
        "--place-gain",
        type=float,
        default=0.5,
        help="size of the place directions, in word-embedding norms (see init_projector)",
    )
    ap.add_argument(
        "--ground-weight",
        type=float,
        default=1.0,
        help="LLaVA phase: weight of the grounding loss (tune.GroundingLoss; 0 = off)",
    )
    ap.add_argument(
        "--relation-steps",
        type=_ints,
        default=[600, 600, 300],
        help="relations phase (see toy_training/relations.py): steps of each stage,\n"
        "comma-separated (0: no relations phase)",
    )
    ap.add_argument("--relation-lr", type=float, default=1e-3)
    ap.add_argument(
        "--relation-tower-lr-scale",
        type=_floats,
        default=[0.5, 0.0, 0.0],
        help="relations phase: tower learning rate / --relation-lr (0 = frozen tower),\n"
        "one for all stages or one per stage",
    )
    ap.add_argument(
        "--relation-share",
        type=_floats,
        default=[0.7, 0.3, 0.1],
        help="relations phase: share of relation questions in a batch, one for all stages or\n"
        "one per stage",
    )
    ap.add_argument(
        "--relation-full-kinds",
        default=",".join(RELATION_FULL_KINDS),
        help="relations phase: full-view question mix of its other turns",
    )
    ap.add_argument(
        "--relation-crop-kinds",
        default=",".join(RELATION_CROP_KINDS),
        help="relations phase: zoomed-view question mix",
    )
    ap.add_argument(
        "--relation-two-image",
        action="store_true",
        help=f"relations phase: every {TWO_IMAGE_EVERY}th batch is ViCrop's two-image turns, as\n"
        "in the LLaVA phase (experimental; the shipped weights were trained without)",
    )
    ap.add_argument(
        "--init-from",
        default=None,
        help="a saved model folder: skip phases 1 and 2 and start the relations phase from it",
    )
    ap.add_argument("--hidden", type=int, default=192)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--vision-hidden", type=int, default=128)
    ap.add_argument("--vision-layers", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--workers",
        type=int,
        default=0,
        help="processes that make batches ahead (0: this one; on a GPU, a few keep it busy)",
    )
    ap.add_argument(
        "--device", default=None, help="torch device (default: cuda, else mps, else cpu)"
    )
    ap.add_argument(
        "--precision",
        choices=("fp32", "bf16", "auto"),
        default="auto",
        help="of the training forward passes. bf16: autocast (attention and weights stay\n"
        "float32), about 1.75 x faster a step on a CPU with native bfloat16; the shipped\n"
        "weights were trained so, in 77 min (model card). auto: bf16 on such a CPU, else\n"
        "fp32 (on a GPU too, where only fp32 runs were made)",
    )
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--ckpt-every", type=int, default=100)
    ap.add_argument("--eval-every", type=int, default=0)
    ap.add_argument("--eval-scenes", type=int, default=200)
    ap.add_argument(
        "--eval-start", type=int, default=0, help="first held-out scene evaluated (0: seed 1000000)"
    )
    ap.add_argument(
        "--export-only",
        action="store_true",
        help="skip training: save and evaluate the latest LLaVA checkpoint",
    )
    ap.add_argument(
        "--examples",
        default=str(ROOT / "assets" / "examples"),
        help="where example scenes + examples.json are written after training",
    )
    ap.add_argument(
        "--example-scenes",
        type=int,
        default=SCENES,
        help="held-out scenes scanned for the examples (0: leave the examples as they are)",
    )
    ap.add_argument("--run-dir", default=str(ROOT / ".train" / "run"))
    ap.add_argument("--out", default=str(ROOT / "assets" / "models" / "laser-toy"))
    args = ap.parse_args(argv)
    stages = len(args.relation_steps)
    for name in ("relation_share", "relation_tower_lr_scale"):
        values = getattr(args, name)
        if len(values) == 1 or not stages:
            setattr(args, name, values[:1] * stages)
        elif len(values) != stages:
            flag = "--" + name.replace("_", "-")
            ap.error(f"{flag}: give one value or one per stage ({stages})")
    return args


def _ints(text: str) -> list[int]:
    """``--relation-steps``: "600,600" -> [600, 600]; "0" -> [] (no stage)."""
    steps = [int(v) for v in text.split(",")]
    if steps == [0]:
        return []
    if min(steps) < 1:
        raise argparse.ArgumentTypeError("each stage needs at least one step")
    return steps


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    run_training(parse_args(argv))


if __name__ == "__main__":
    main()
