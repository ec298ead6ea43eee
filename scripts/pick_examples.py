"""Pick the app's example rows again for the shipped model, without retraining it.

    python scripts/pick_examples.py      # rewrites assets/examples/ (scenes + examples.json)

Training ends with the same step (`scripts/toy_training/examples.py` says how rows are chosen).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from laser_core import EMBEDDED_MODEL, load_model  # noqa: E402
from scripts.toy_training.examples import SCENES, write_examples  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(EMBEDDED_MODEL), help="model folder")
    ap.add_argument("--out", default=str(ROOT / "assets" / "examples"))
    ap.add_argument("--scenes", type=int, default=SCENES, help="held-out scenes to scan")
    args = ap.parse_args(argv)
    write_examples(load_model(Path(args.model), device="cpu"), Path(args.out), scenes=args.scenes)


if __name__ == "__main__":
    main()
