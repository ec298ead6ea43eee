"""Component settings shared by the page's tabs: picture toolbars and the one model slot."""

from __future__ import annotations

from typing import Any

import gradio as gr

# Model events share one queue slot: one accelerator holds one model and runs one call at a time.
MODEL_SLOT: dict[str, Any] = {"concurrency_limit": 1, "concurrency_id": "model"}
PICTURE_BUTTONS = ["download", "fullscreen"]  # no "share": the app runs offline


def picture(label: str, *, format: str = "png", **options: Any) -> gr.Image:
    """An output picture with the app's toolbar (download, full screen)."""
    return gr.Image(buttons=PICTURE_BUTTONS, label=label, format=format, **options)
