"""LASER Lens: see where a vision-language model looks, layer by layer, and why LASER crops there.

    python app.py                      # http://127.0.0.1:7860, the embedded toy model
    LASER_MODEL=llava-hf/llava-1.5-7b-hf GRADIO_SERVER_NAME=0.0.0.0 python app.py

The entry point only: the page is built by `ui.page` (the Gradio app), which calls `laser_core`
(the method) and `viz` (the pictures). Environment: LASER_MODEL (default model: hub id or
folder), LASER_DEVICE (cuda, cpu, ...), GRADIO_SERVER_NAME / GRADIO_SERVER_PORT or PORT.
"""

from __future__ import annotations

import os

from ui.page import build_demo, launch_options  # ui sets GRADIO_ANALYTICS_ENABLED=False first

demo = build_demo()

if __name__ == "__main__":
    port = os.environ.get("GRADIO_SERVER_PORT") or os.environ.get("PORT") or "7860"
    demo.launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(port),
        **launch_options(),
    )
