"""LASER Lens, the Gradio app: the page, its tabs and the events behind them.

    page.py       the page: inputs and answer on top, the Explain tab, then the other tabs
    handlers.py   the Explain tab's events: run, refocus on another layer, redraw, export
    explorer.py   the Explain tab's pictures and tables, from a session
    session.py    one user's run, kept in gr.State: what the redraws and the refocus need
    compare.py    the Compare tab: every method on the same input (layout, view, event)
    clvs_tab.py   the CLVS tab (layout, views, events)
    export.py     the slide (PNG) and the result (JSON)
    settings.py   the settings panel, generated from LaserConfig, and back to a config
    events.py     what every model event shares: input checks, messages, progress, API names
    uploads.py    taking an image in: upload-folder check, size and pixel limits, working size
    runs.py       stopping runs (Stop, a client gone), the model slot, one job per session
    limits.py     the limits of a public deployment, from environment variables
    models.py     the model cache (one model at a time) and the calls that run a model
    widgets.py    component settings shared by the tabs
    texts.py      the words of the page and its CSS

Imports flow app -> ui -> laser_core, viz; nothing here imports transformers.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: offline
