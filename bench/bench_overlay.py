"""Time the overlay redraw that runs while a user drags the layer slider.

One frame = three maps (raw, relative, contrastive) on a 24 x 24 LLaVA-style grid (image padded
to a square, border cells clipped). Reports the median over N frames, in milliseconds, for:
`OverlayCanvas.render` alone (flat cells and smooth) and `heatmap_panel` (overlay + colour bar +
title), plus the one-off canvas construction. numpy only; run on one core with

    OMP_NUM_THREADS=1 taskset -c 0 python bench/bench_overlay.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the repo

from viz import OverlayCanvas, heatmap_panel  # noqa: E402

GRID = 24  # LLaVA-1.5 visual-token grid side
TITLES = ("Raw attention", "Relative attention", "Contrastive attention")


def padded_cell_boxes(width: int, height: int, side: int = GRID) -> np.ndarray:
    """[side, side, 4] footprints of a grid over the image padded to a square, clipped."""
    square = max(width, height)
    xs = np.linspace(0, square, side + 1) - (square - width) / 2
    ys = np.linspace(0, square, side + 1) - (square - height) / 2
    boxes = np.zeros((side, side, 4))
    boxes[..., 0], boxes[..., 2] = np.clip(xs[:-1], 0, width), np.clip(xs[1:], 0, width)
    boxes[..., 1] = np.clip(ys[:-1], 0, height)[:, None]
    boxes[..., 3] = np.clip(ys[1:], 0, height)[:, None]
    return boxes


def median_ms(frame: Callable[[], object], repeats: int) -> float:
    """Median wall time of `frame()` in milliseconds, after one warm-up call."""
    frame()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        frame()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench_image(width: int, height: int, repeats: int) -> None:
    """Print timings for one image size."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
    boxes = padded_cell_boxes(width, height)
    maps = [rng.random((GRID, GRID)).astype(np.float32) for _ in TITLES]

    start = time.perf_counter()
    canvas = OverlayCanvas(image, boxes, max_side=1024)
    build_ms = 1000 * (time.perf_counter() - start)
    flat = median_ms(lambda: [canvas.render(m) for m in maps], repeats)
    smooth = median_ms(lambda: [canvas.render(m, smooth=True) for m in maps], repeats)
    named = list(zip(TITLES, maps, strict=True))
    panels = median_ms(
        lambda: [heatmap_panel(canvas, m, title=f"{t} · layer 12") for t, m in named], repeats
    )
    w, h = canvas.display_size
    print(
        f"{width}x{height} -> {w}x{h}: canvas build {build_ms:7.1f} ms | per frame of 3 maps: "
        f"render {flat:5.1f} ms, smooth {smooth:5.1f} ms, panels {panels:5.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="frames per measurement")
    args = parser.parse_args()
    for width, height in ((1024, 768), (4000, 3000)):
        bench_image(width, height, args.repeats)


if __name__ == "__main__":
    main()
