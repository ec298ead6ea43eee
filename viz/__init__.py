"""Rendering for LASER Lens: numpy arrays and PIL images in, RGB arrays out.

`viz` depends only on numpy, Pillow, matplotlib and OpenCV (`cv2`); it never imports the model
stack or the app.
Layer numbers are 0-based everywhere.
"""

from viz.charts import bar_colors, figure_to_array, vaq_chart
from viz.draw import (
    BAR_COLOR,
    CHOSEN_COLOR,
    CROP_COLOR,
    MASK_COLOR,
    STATIC_COLOR,
    display_size,
    draw_box,
    draw_cells,
    fit_for_display,
)
from viz.figure import SLIDE_SIZE, save_png, slide_figure
from viz.overlay import OverlayCanvas, colormap_lut, overlay_heatmap
from viz.panels import add_colorbar, heatmap_panel
from viz.tables import VAT_HEADERS, format_token, vat_rows

__all__ = [
    "BAR_COLOR",
    "CHOSEN_COLOR",
    "CROP_COLOR",
    "MASK_COLOR",
    "SLIDE_SIZE",
    "STATIC_COLOR",
    "VAT_HEADERS",
    "OverlayCanvas",
    "add_colorbar",
    "bar_colors",
    "colormap_lut",
    "display_size",
    "draw_box",
    "draw_cells",
    "figure_to_array",
    "fit_for_display",
    "format_token",
    "heatmap_panel",
    "overlay_heatmap",
    "save_png",
    "slide_figure",
    "vaq_chart",
    "vat_rows",
]
