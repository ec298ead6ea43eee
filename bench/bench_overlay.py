"""Time the slider redraw, the blur fill and the box drawing: numpy/PIL against cv2, side by side.

One frame = three maps (raw, relative, contrastive) on a 24 x 24 LLaVA-style grid (image padded
to a square, border cells clipped), shown at 1024 px. For each operation the numpy/PIL version
("old": today's code where the product column says numpy or PIL, the previous code from
`bench/_previous.py` where it says cv2) and the cv2 version (the product's, or a candidate
written out here that lost) run alternately on the same inputs. The table gives their medians,
the ratio old / cv2, the largest and mean absolute difference of their outputs (uint8 levels
or RGB values) and the version the product uses. Run on one core with

    OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE python bench/bench_overlay.py

The machine is shared: compare the two columns of one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the repo

import bench._previous as previous  # noqa: E402
from laser_core import mask_cells, top_cells  # noqa: E402
from laser_core.mask import _blur_sigma  # noqa: E402
from viz import (  # noqa: E402
    OverlayCanvas,
    colormap_lut,
    display_size,
    draw_box,
    draw_cells,
    fit_for_display,
    heatmap_panel,
)
from viz.overlay import _level_units  # noqa: E402

GRID = 24  # LLaVA-1.5 visual-token grid side
QWEN_GRID = (27, 37)  # Qwen2-VL merged cells of a 1024 x 768 image: they tile it exactly
TITLES = ("Raw attention", "Relative attention", "Contrastive attention")
SIZES = ((1024, 768), (4000, 3000))


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


def tiled_cell_boxes(width: int, height: int, rows: int, cols: int) -> np.ndarray:
    """[rows, cols, 4] footprints of a grid that tiles the image exactly (Qwen-like)."""
    xs, ys = np.linspace(0, width, cols + 1), np.linspace(0, height, rows + 1)
    boxes = np.zeros((rows, cols, 4))
    boxes[..., 0], boxes[..., 2] = xs[:-1], xs[1:]
    boxes[..., 1], boxes[..., 3] = ys[:-1, None], ys[1:, None]
    return boxes


def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like test image: 60 flat rectangles with sharp edges, plus sensor noise."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x0, x1 = sorted(rng.integers(0, width, 2))
        y0, y1 = sorted(rng.integers(0, height, 2))
        draw.rectangle((x0, y0, x1, y1), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    noisy = np.asarray(image).astype(np.int16) + rng.integers(-20, 21, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def paired_ms(old: Callable[[], object], new: Callable[[], object], repeats: int) -> tuple:
    """Medians in ms of `old()` and `new()`, run alternately `repeats` times after a warm-up."""
    old(), new()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for frame, bucket in ((old, times[0]), (new, times[1])):
            start = time.perf_counter()
            frame()
            bucket.append(time.perf_counter() - start)
    return tuple(1000 * statistics.median(bucket) for bucket in times)


def _as_array(result: object) -> np.ndarray:
    """A frame, a PIL image or a list of frames as one int array, for differences."""
    if isinstance(result, list):
        return np.concatenate([_as_array(r).ravel() for r in result])
    return np.asarray(result).astype(np.int16)


class Table:
    """Rows of: operation, image size, old ms, cv2 ms, ratio, max and mean |diff|, product."""

    HEAD = (
        f"{'operation':<46} {'image':>9} {'old ms':>8} {'cv2 ms':>8} {'old/cv2':>7} "
        f"{'max|d|':>6} {'mean|d|':>7}  product"
    )

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        print(self.HEAD)

    def row(
        self,
        name: str,
        size: str,
        old: Callable[[], object],
        new: Callable[[], object],
        *,
        product: str,
        repeats: int | None = None,
    ) -> None:
        """Time `old` against `new`, compare their outputs and print one row."""
        old_ms, new_ms = paired_ms(old, new, repeats or self.repeats)
        diff = np.abs(_as_array(old()) - _as_array(new()))
        print(
            f"{name:<46} {size:>9} {old_ms:8.2f} {new_ms:8.2f} {old_ms / new_ms:7.2f} "
            f"{int(diff.max()):6d} {diff.mean():7.3f}  {product}",
            flush=True,
        )


def nearest_maps(canvas: OverlayCanvas) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap maps sending each display pixel to its cell (the canvas's own index arrays)."""
    rows, cols = canvas._rows, canvas._cols
    shape = (rows.index.size, cols.index.size)
    map_x = np.broadcast_to(cols.index.astype(np.float32)[None, :], shape)
    map_y = np.broadcast_to(rows.index.astype(np.float32)[:, None], shape)
    x, y = np.ascontiguousarray(map_x), np.ascontiguousarray(map_y)
    return cv2.convertMaps(x, y, cv2.CV_16SC2, nninterpolation=True)


def linear_maps(canvas: OverlayCanvas) -> tuple[np.ndarray, np.ndarray]:
    """cv2.remap float maps of the fractional grid position the smooth path interpolates at."""
    rows, cols = canvas._rows, canvas._cols
    for axis in (rows, cols):  # lerp_hi = lerp_lo + 1 (or clamped): consecutive visible lines
        assert (np.isin(axis.lerp_hi - axis.lerp_lo, (0, 1))).all()
    shape = (rows.index.size, cols.index.size)
    map_x = np.broadcast_to((cols.lerp_lo + cols.lerp_w).astype(np.float32)[None, :], shape)
    map_y = np.broadcast_to((rows.lerp_lo + rows.lerp_w).astype(np.float32)[:, None], shape)
    return np.ascontiguousarray(map_x), np.ascontiguousarray(map_y)


def bench_redraw(table: Table, width: int, height: int) -> None:
    """(a) upsampling, (b) colour + blend, whole renders and (c) the three-panel frame."""
    rng = np.random.default_rng(0)
    image, size = scene(width, height), f"{width}x{height}"
    canvas = OverlayCanvas(image, padded_cell_boxes(width, height), max_side=1024)
    old_canvas = previous.PreviousCanvas(image, padded_cell_boxes(width, height), max_side=1024)
    maps = [rng.random((GRID, GRID)).astype(np.float32) for _ in TITLES]
    units = [_level_units(m, *canvas.value_range(m)) for m in maps]
    cells = [u.astype(np.uint8) for u in units]
    rows, cols = canvas._rows, canvas._cols
    near, (map_x, map_y) = nearest_maps(canvas), linear_maps(canvas)

    table.row(
        "(a) upsample nearest: np.take | cv2.remap",
        size,
        lambda: [np.take(np.take(c, rows.index, axis=0), cols.index, axis=1) for c in cells],
        lambda: [cv2.remap(c, *near, cv2.INTER_NEAREST) for c in cells],
        product="numpy",
    )
    table.row(
        "(a) upsample smooth: separable | cv2.remap",
        size,
        lambda: [canvas._smooth_levels(u) for u in units],
        lambda: [cv2.remap(u, map_x, map_y, cv2.INTER_LINEAR).astype(np.uint8) for u in units],
        product="numpy",
    )
    levels = [canvas._smooth_levels(u) for u in units]
    table.row(
        "(b) LUT + blend: packed uint32 | cv2",
        size,
        lambda: [old_canvas.colour_and_blend(lv, 0.55) for lv in levels],
        lambda: [_cv2_colour_and_blend(canvas, lv, 0.55) for lv in levels],
        product="cv2",
    )
    for smooth in (False, True):
        table.row(
            f"render x3, {'smooth' if smooth else 'flat cells'}",
            size,
            lambda s=smooth: [old_canvas.render(m, smooth=s) for m in maps],
            lambda s=smooth: [canvas.render(m, smooth=s) for m in maps],
            product="cv2",
        )
    box = (0.3 * width, 0.2 * height, 0.8 * width, 0.9 * height)
    for smooth in (False, True):
        table.row(
            f"(c) frame: heatmap_panel x3 + crop box{', smooth' if smooth else ''}",
            size,
            lambda s=smooth: _panels(previous.heatmap_panel, old_canvas, maps, box, smooth=s),
            lambda s=smooth: _panels(heatmap_panel, canvas, maps, box, smooth=s),
            product="cv2",
        )


def _cv2_colour_and_blend(canvas: OverlayCanvas, levels: np.ndarray, opacity: float):
    """The colour + blend tail of today's `OverlayCanvas.render` (cv2), on uint8 levels."""
    colour = cv2.applyColorMap(levels, np.ascontiguousarray(colormap_lut()[:, None]))
    return cv2.addWeighted(canvas.base, 1.0 - opacity, colour, opacity, 0.0)


def _panels(
    panel: Callable[..., np.ndarray],
    canvas: OverlayCanvas,
    maps: list[np.ndarray],
    box: tuple,
    *,
    smooth: bool,
) -> list[np.ndarray]:
    """What one slider step draws: three titled panels with colour bars and the crop box."""
    return [
        panel(canvas, m, title=f"{title} · layer 12", box=box, smooth=smooth)
        for title, m in zip(TITLES, maps, strict=True)
    ]


def bench_tiled(table: Table) -> None:
    """(a) on a grid that tiles the image, the one case where cv2.resize applies."""
    width, height = 1024, 768
    canvas = OverlayCanvas(scene(width, height), tiled_cell_boxes(width, height, *QWEN_GRID))
    heat = np.random.default_rng(1).random(QWEN_GRID).astype(np.float32)
    units = _level_units(heat, *canvas.value_range(heat))
    cells, rows, cols = units.astype(np.uint8), canvas._rows, canvas._cols
    size = canvas.display_size
    table.row(
        "(a) tiled grid, nearest: np.take | resize",
        f"{width}x{height}",
        lambda: np.take(np.take(cells, rows.index, axis=0), cols.index, axis=1),
        lambda: cv2.resize(cells, size, interpolation=cv2.INTER_NEAREST_EXACT),
        product="numpy",
    )
    table.row(
        "(a) tiled grid, smooth: separable | resize",
        f"{width}x{height}",
        lambda: canvas._smooth_levels(units),
        lambda: cv2.resize(units, size, interpolation=cv2.INTER_LINEAR).astype(np.uint8),
        product="numpy",
    )


def bench_mask_and_draw(table: Table, width: int, height: int) -> None:
    """(d) the blur fill of the counterfactual and (e) box and cell drawing."""
    rng = np.random.default_rng(2)
    image, size = scene(width, height), f"{width}x{height}"
    boxes = padded_cell_boxes(width, height)
    cells = top_cells(rng.random((GRID, GRID)), 0.05)  # 29 cells, as the default k_patches
    slow = max(3, table.repeats // 5)
    table.row(
        "(d) mask_cells blur: PIL | cv2.stackBlur",
        size,
        lambda: previous.mask_cells_blur(image, boxes, cells),
        lambda: mask_cells(image, boxes, cells, fill="blur"),
        product="cv2",
        repeats=slow,
    )
    if width * height <= 1024 * 768:  # an exact Gaussian this wide takes seconds on 12 Mpx
        pixels, sigma = np.asarray(image), _blur_sigma(boxes)
        table.row(
            "    blur alone: PIL | cv2.GaussianBlur",
            size,
            lambda: image.filter(ImageFilter.GaussianBlur(radius=sigma)),
            lambda: cv2.GaussianBlur(pixels, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE),
            product="-",
            repeats=3,
        )
    pixels = np.asarray(image)
    if max(width, height) > 1024:  # the one-off downscale in OverlayCanvas(...)
        target = display_size(width, height, 1024)
        table.row(
            "    canvas image: PIL Lanczos | cv2 INTER_AREA",
            size,
            lambda: fit_for_display(image, 1024),
            lambda: cv2.resize(np.asarray(image), target, interpolation=cv2.INTER_AREA),
            product="PIL",
            repeats=slow,
        )
    box = (0.3 * width, 0.2 * height, 0.8 * width, 0.9 * height)
    table.row(
        "(e) draw_box: PIL ImageDraw | cv2",
        size,
        lambda: previous.draw_box(pixels, box),
        lambda: draw_box(pixels, box),
        product="cv2",
    )
    table.row(
        "(e) draw_cells: numpy + PIL | cv2",
        size,
        lambda: previous.draw_cells(pixels, boxes, cells),
        lambda: draw_cells(pixels, boxes, cells),
        product="cv2",
        repeats=slow if width * height > 1024 * 768 else None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="runs per measurement")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    print(f"cv2 {cv2.__version__}, numpy {np.__version__}, one cv2 thread, medians in ms")
    table = Table(args.repeats)
    for width, height in SIZES:
        bench_redraw(table, width, height)
    bench_tiled(table)
    for width, height in SIZES:
        bench_mask_and_draw(table, width, height)


if __name__ == "__main__":
    main()
