"""CLVS charts: attention to the image across layers, and the uncertainty check.

`attention_decay_chart` draws the paper's "advantageous attention decay" picture: how much of the
generating token's attention goes to the image (or to one region of it) at each decoder layer,
without smoothing and with CLVS, with the layers that were smoothed shaded. `uncertainty_chart`
draws the normalised top-k entropy of each checked layer against the threshold delta.

Plain arrays in, uint8 RGB arrays out. Figures are built with `matplotlib.figure.Figure` on an
Agg canvas (never pyplot, so nothing is registered or shown) and dropped once rendered.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from viz.charts import figure_to_array
from viz.draw import BAR_COLOR, CHOSEN_COLOR, INK, MUTED_INK, STATIC_COLOR

_DPI = 100
_FONT = 22  # points at the default 1024 x 640; scaled with the chart size
SMOOTHED_COLOR = CHOSEN_COLOR  # with CLVS (vermillion)
PLAIN_COLOR = MUTED_INK  # without smoothing (dark grey)
STOP_COLOR = STATIC_COLOR  # the layer where smoothing stopped (blue)


def attention_decay_chart(
    before: np.ndarray,
    after: np.ndarray,
    *,
    stop_layer: int | None,
    smoothed_from: int = 1,
    region: str = "the image",
    labels: tuple[str, str] = ("without smoothing", "with CLVS"),
    title: str | None = None,
    size: tuple[int, int] = (1024, 640),
) -> np.ndarray:
    """Attention to the image (or a region) per layer, without and with smoothing.

    Args:
        before: [n_layers] attention share without smoothing (e.g. a plain run's first token,
            or each layer's own row before smoothing), in [0, 1].
        after: [n_layers] the same with CLVS.
        stop_layer: Layer whose uncertainty check stopped smoothing (smoothing applies up to and
            including it), or None if smoothing ran through the last layer.
        smoothed_from: First smoothed layer (layer 0 only sets up the memory).
        region: What the attention goes to, for the axis label ("the image", "the box").
        labels: Legend entries of the two curves.
        title: Chart title; None = "Attention to <region> across layers".
        size: (width, height) in pixels.

    Returns:
        uint8 RGB array [height, width, 3].
    """
    plain = np.asarray(before, dtype=np.float64).ravel()
    smooth = np.asarray(after, dtype=np.float64).ravel()
    if plain.shape != smooth.shape or plain.size == 0:
        raise ValueError(
            f"before and after must be equal, non-empty [n_layers] arrays, "
            f"got {plain.shape} and {smooth.shape}"
        )
    n_layers = plain.size
    _check_layer(stop_layer, n_layers, "stop_layer")
    figure, axes, font = _new_chart(size)
    layers = np.arange(n_layers)
    last_smoothed = n_layers - 1 if stop_layer is None else stop_layer
    if smoothed_from <= last_smoothed:
        axes.axvspan(
            smoothed_from - 0.5,
            last_smoothed + 0.5,
            color=BAR_COLOR,
            alpha=0.25,
            lw=0,
            label="smoothed layers",
            zorder=0,
        )
    axes.plot(
        layers,
        plain,
        color=PLAIN_COLOR,
        lw=2.5,
        ls="--",
        marker="o",
        ms=6,
        label=labels[0],
        zorder=2,
    )
    axes.plot(
        layers, smooth, color=SMOOTHED_COLOR, lw=3, marker="o", ms=7, label=labels[1], zorder=3
    )
    if stop_layer is not None:
        _mark_stop(axes, stop_layer)
    top = np.nanmax(np.concatenate([plain, smooth]))
    axes.set_ylim(0, (top if np.isfinite(top) and top > 0 else 1.0) * 1.15)
    _style(axes, n_layers, f"attention to {region}", font)
    axes.set_title(
        title or f"Attention to {region} across layers", fontsize=font * 1.1, color=INK, pad=10
    )
    figure.legend(fontsize=font * 0.75, frameon=False, loc="outside lower center", ncols=2)
    return figure_to_array(figure)


def uncertainty_chart(
    uncertainty: np.ndarray,
    *,
    delta: float,
    stop_layer: int | None,
    title: str = "When does CLVS stop smoothing?",
    size: tuple[int, int] = (1024, 640),
) -> np.ndarray:
    """Normalised top-k entropy of each checked layer, against the stop threshold.

    Args:
        uncertainty: [n_layers] values in [0, 1]; NaN for layers that were not checked.
        delta: Stop threshold in [0, 1]: smoothing stops at the first checked layer below it.
        stop_layer: The layer where it stopped, or None.
        title: Chart title.
        size: (width, height) in pixels.

    Returns:
        uint8 RGB array [height, width, 3].
    """
    values = np.asarray(uncertainty, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("uncertainty must be a non-empty [n_layers] array")
    if not 0 <= delta <= 1:
        raise ValueError(f"delta must be in [0, 1], got {delta}")
    n_layers = values.size
    _check_layer(stop_layer, n_layers, "stop_layer")
    figure, axes, font = _new_chart(size)
    layers = np.arange(n_layers)
    axes.axhline(
        delta, color=SMOOTHED_COLOR, lw=3, ls="--", label=f"threshold δ = {delta:g}", zorder=1
    )
    axes.plot(
        layers,
        values,
        color=INK,
        lw=2.5,
        marker="o",
        ms=7,
        label="normalised top-k entropy",
        zorder=3,
    )  # NaN leaves a gap
    if stop_layer is not None:
        _mark_stop(axes, stop_layer)
    if not np.isfinite(values).any():
        axes.text(
            0.5,
            0.5,
            "no layer was checked",
            transform=axes.transAxes,
            ha="center",
            fontsize=font,
            color=INK,
            alpha=0.7,
        )
    axes.set_ylim(0, 1.08)
    _style(axes, n_layers, "uncertainty\n(0 = sure, 1 = undecided)", font)
    axes.set_title(title, fontsize=font * 1.1, color=INK, pad=10)
    figure.legend(fontsize=font * 0.75, frameon=False, loc="outside lower center", ncols=2)
    return figure_to_array(figure)


def _new_chart(size: tuple[int, int]) -> tuple[Figure, Axes, float]:
    """An empty chart and its base font size (points), scaled so small charts still fit."""
    figure = Figure(figsize=(size[0] / _DPI, size[1] / _DPI), dpi=_DPI, layout="constrained")
    font = max(9.0, _FONT * min(size[0] / 1024, size[1] / 640))
    return figure, figure.add_subplot(), font


def _check_layer(layer: int | None, n_layers: int, name: str) -> None:
    if layer is not None and not 0 <= layer < n_layers:
        raise ValueError(f"{name} {layer} is outside 0..{n_layers - 1}")


def _mark_stop(axes: Axes, stop_layer: int) -> None:
    axes.axvline(
        stop_layer,
        color=STOP_COLOR,
        lw=2.5,
        ls=":",
        zorder=1,
        label=f"smoothing stops (layer {stop_layer})",
    )


def _style(axes: Axes, n_layers: int, ylabel: str, font: float) -> None:
    """Axis labels, integer layer ticks, light grid, no top/right spines."""
    axes.set_xlim(-0.5, n_layers - 0.5)
    axes.set_xlabel("decoder layer", fontsize=font, color=INK)
    axes.set_ylabel(ylabel, fontsize=font * 0.8, color=INK)
    axes.xaxis.set_major_locator(
        MaxNLocator(nbins=min(n_layers, 16), steps=[1, 2, 4, 5, 10], integer=True)
    )
    axes.tick_params(labelsize=font * 0.75, colors=INK)
    axes.grid(axis="y", color="#DDDDDD", zorder=0)
    axes.spines[["top", "right"]].set_visible(False)
