"""Charts drawn with matplotlib's object API and rendered straight to RGB arrays.

Figures are built with `matplotlib.figure.Figure` and an Agg canvas, never through pyplot: no
global figure registry, nothing to show, and safe in the app's worker threads. The figure is
released as soon as its pixels are copied out.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from viz.draw import BAR_COLOR, CHOSEN_COLOR, INK, STATIC_COLOR

_DPI = 100
_FONT = 24  # points; at 100 dpi a 1024 x 640 chart stays legible when shown half-width


def figure_to_array(figure: Figure) -> np.ndarray:
    """Render a matplotlib figure with Agg and return its pixels as uint8 RGB [h, w, 3]."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[:, :, :3].copy()


def bar_colors(n_layers: int, *, chosen: int) -> list[str]:
    """Fill colour of each layer's bar: the chosen layer l* stands out, the rest are grey."""
    if not 0 <= chosen < n_layers:
        raise ValueError(f"chosen layer {chosen} is outside 0..{n_layers - 1}")
    return [CHOSEN_COLOR if layer == chosen else BAR_COLOR for layer in range(n_layers)]


def vaq_chart(
    layer_scores: np.ndarray,
    *,
    chosen: int,
    static: int | None = None,
    title: str = "Visual Activation by Query (VAQ) per layer",
    size: tuple[int, int] = (1024, 640),
) -> np.ndarray:
    """Bar chart of VAQ per decoder layer with the chosen and the static layer marked.

    Args:
        layer_scores: [n_layers] VAQ of each layer (>= 0; all zeros is fine).
        chosen: 0-based index of the chosen layer l* (highlighted and annotated "l* = 17").
        static: 0-based index of the model's static layer (hatched and outlined), if any.
        title: Chart title.
        size: (width, height) of the result in pixels.

    Returns:
        uint8 RGB array [height, width, 3].
    """
    scores = np.nan_to_num(np.asarray(layer_scores, dtype=np.float64).ravel())
    n_layers = scores.size
    colors = bar_colors(n_layers, chosen=chosen)
    if static is not None and not 0 <= static < n_layers:
        raise ValueError(f"static layer {static} is outside 0..{n_layers - 1}")

    figure = Figure(figsize=(size[0] / _DPI, size[1] / _DPI), dpi=_DPI, layout="constrained")
    axes = figure.add_subplot()
    layers = np.arange(n_layers)
    bars = axes.bar(layers, scores, width=0.8, color=colors, edgecolor="none", zorder=2)
    top = scores.max() if scores.max() > 0 else 1.0
    axes.set_ylim(0, top * 1.18)  # head room for the l* annotation
    axes.set_xlim(-0.7, n_layers - 0.3)
    handles = [Patch(facecolor=CHOSEN_COLOR, label="chosen layer l*")]
    if static is not None:
        static_bar = bars[static]
        static_bar.set_hatch("//")
        static_bar.set_edgecolor(STATIC_COLOR)
        static_bar.set_linewidth(2.5)
        handles.append(
            Patch(
                facecolor=BAR_COLOR,
                edgecolor=STATIC_COLOR,
                hatch="//",
                lw=2.5,
                label="static layer",
            )
        )
    axes.annotate(
        f"l* = {chosen}",
        xy=(chosen, scores[chosen]),
        xytext=(0, 8),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=_FONT,
        fontweight="bold",
        color=CHOSEN_COLOR,
    )
    if not scores.any():
        axes.text(
            0.5,
            0.5,
            "all VAQ scores are zero",
            transform=axes.transAxes,
            ha="center",
            fontsize=_FONT,
            color=INK,
            alpha=0.7,
        )
    _style_axes(axes, n_layers)
    axes.set_title(title, fontsize=_FONT + 4, color=INK, pad=12)
    # Below the axes, so the legend never hides a bar or the l* annotation.
    figure.legend(
        handles=handles,
        fontsize=_FONT - 4,
        frameon=False,
        loc="outside lower center",
        ncols=len(handles),
    )
    return figure_to_array(figure)


def _style_axes(axes: Axes, n_layers: int) -> None:
    """Axis labels, integer layer ticks, light horizontal grid, no top/right spines."""
    axes.set_xlabel("decoder layer", fontsize=_FONT, color=INK)
    axes.set_ylabel("VAQ\n(L2 norm of contrastive attention)", fontsize=_FONT - 4, color=INK)
    axes.xaxis.set_major_locator(
        MaxNLocator(nbins=min(n_layers, 16), steps=[1, 2, 4, 5, 10], integer=True)
    )
    axes.tick_params(labelsize=_FONT - 4, colors=INK)
    axes.grid(axis="y", color="#DDDDDD", zorder=0)
    axes.spines[["top", "right"]].set_visible(False)
