"""Figures of the toy benchmark, from its JSON: the paper's Figure 5 and CLVS's Figure 6, in kind.

    python scripts/toy_figures.py results/toy/toy_bench.json [--out results/toy]

- `fig5_layers.png`: how often VAQ chose each layer l*, per question kind.
- `fig6_clvs.png`: attention of the first answer token to the ASKED object (the ground-truth box),
  layer by layer, without and with CLVS; mean and standard error over the questions with a box.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from viz import figure_to_array, save_png  # noqa: E402

KIND_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00")


def layer_figure(report: dict[str, Any]) -> np.ndarray:
    """Grouped bars: share of each kind's questions whose l* is each layer."""
    counts = report["summary"]["layer_counts"]
    kinds = [k for k in counts if k != "all"]
    n_layers = report["n_layers"]
    figure = Figure(figsize=(10, 5.5), dpi=120)
    axes = figure.add_subplot()
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        total = max(sum(counts[kind]), 1)
        shares = np.asarray(counts[kind]) / total
        axes.bar(
            np.arange(n_layers) + (i - (len(kinds) - 1) / 2) * width,
            shares,
            width,
            label=f"{kind} (n={total})",
            color=KIND_COLOURS[i % len(KIND_COLOURS)],
        )
    static = report["config"]["static_layer"]
    axes.axvline(static, color="0.4", linestyle="--", linewidth=1)
    axes.text(static, axes.get_ylim()[1] * 0.97, " static layer", color="0.3", va="top")
    axes.set_xticks(range(n_layers))
    axes.set_xlabel("decoder layer chosen by VAQ (l*)")
    axes.set_ylabel("share of questions")
    axes.set_title(f"Layer chosen by VAQ per question kind ({report['n_scenes']} scenes)")
    axes.legend(frameon=False, ncols=min(len(kinds), 3))
    figure.tight_layout()
    return figure_to_array(figure)


def clvs_figure(report: dict[str, Any]) -> np.ndarray | None:
    """Mean attention to the asked object per layer, without and with CLVS (None: no data)."""
    traces = [r["clvs"] for r in report["records"] if r.get("clvs")]
    if not traces:
        return None
    curves = {
        name: np.asarray([t[name] for t in traces], dtype=np.float64)
        for name in ("without", "with")
    }
    stops = [t["stop_layer"] for t in traces]
    figure = Figure(figsize=(10, 5.5), dpi=120)
    axes = figure.add_subplot()
    layers = np.arange(curves["with"].shape[1])
    for name, colour in (("without", "#0072B2"), ("with", "#D55E00")):
        mean = curves[name].mean(0)
        se = curves[name].std(0, ddof=1) / np.sqrt(len(traces)) if len(traces) > 1 else 0 * mean
        axes.plot(
            layers,
            mean,
            marker="o",
            color=colour,
            label="without smoothing" if name == "without" else "with CLVS",
        )
        axes.fill_between(layers, mean - se, mean + se, color=colour, alpha=0.2)
    never = sum(s is None for s in stops)
    stopped = [s for s in stops if s is not None]
    note = (
        f"smoothing stopped at layer {int(np.median(stopped))} (median)"
        if stopped
        else "smoothing never stopped"
    )
    axes.set_title(
        f"Attention to the asked object, first answer token ({len(traces)} questions)\n"
        f"{note}; ran through all layers in {never} of {len(traces)}"
    )
    axes.set_xticks(layers)
    axes.set_xlabel("decoder layer")
    axes.set_ylabel("attention mass on the object's cells")
    axes.legend(frameon=False)
    figure.tight_layout()
    return figure_to_array(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", help="toy_bench.json written by python -m laser_core.bench toy")
    parser.add_argument("--out", default=None, help="folder (default: the report's folder)")
    args = parser.parse_args()
    report = json.loads(Path(args.report).read_text())
    out = Path(args.out) if args.out else Path(args.report).parent
    print(f"wrote {save_png(layer_figure(report), out / 'fig5_layers.png')}")
    clvs = clvs_figure(report)
    if clvs is not None:
        print(f"wrote {save_png(clvs, out / 'fig6_clvs.png')}")


if __name__ == "__main__":
    main()
