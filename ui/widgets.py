"""Component settings shared by the page's tabs: picture toolbars, the one model slot, session
state that expires."""

from __future__ import annotations

from typing import Any

import gradio as gr

from ui.limits import hosting_limits
from ui.runs import job_validator
from ui.session import release_memory

# Model events share one queue slot: one accelerator holds one model and runs one call at a time.
# Each of them reads its inputs itself (preprocess=False: clear messages for any bad value; files
# only through `ui.uploads`) and joins the queue only if its session has no other job waiting
# (`ui.runs.job_validator`).
MODEL_SLOT: dict[str, Any] = {
    "concurrency_limit": 1,
    "concurrency_id": "model",
    "preprocess": False,
    "validator": job_validator(),  # the refusal is shown under the first input, the image
}
PICTURE_BUTTONS = ["download", "fullscreen"]  # no "share": the app runs offline


def picture(label: str, *, format: str = "png", **options: Any) -> gr.Image:
    """An output picture with the app's toolbar (download, full screen)."""
    return gr.Image(buttons=PICTURE_BUTTONS, label=label, format=format, **options)


def session_state() -> gr.State:
    """Per-user state that Gradio deletes `LASER_SESSION_TTL` seconds after its last update."""
    ttl = hosting_limits().session_ttl_s
    return gr.State(None, time_to_live=ttl, delete_callback=release_memory)
