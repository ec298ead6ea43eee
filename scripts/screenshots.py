"""Refresh the README's pictures of the app: three tabs in a real browser and an exported slide.

    python scripts/screenshots.py        # rewrites assets/screenshots/*.png (embedded model)

The browser tests take the same screenshots into a temporary folder on every run; this command
runs them with LASER_SCREENSHOTS pointing at assets/screenshots, then exports the slide of the
first fine-mark example, so the tracked pictures change only when someone asks for it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FOLDER = ROOT / "assets" / "screenshots"


def browser_shots() -> None:
    """app-explain.png, app-compare.png, app-clvs.png, from the browser tests."""
    env = {**os.environ, "LASER_SCREENSHOTS": str(FOLDER), "CI": "1"}  # fail if no Chromium
    test = ROOT / "tests" / "app" / "test_browser.py"
    subprocess.run([sys.executable, "-m", "pytest", "-q", str(test)], cwd=ROOT, env=env, check=True)


def slide_shot() -> Path:
    """slide-export.png: the exported slide of the first example that asks for a pattern."""
    from ui import handlers
    from ui.export import slide_image
    from ui.models import EMBEDDED
    from ui.settings import SETTINGS
    from viz import save_png

    examples = handlers.load_examples(ROOT / "assets" / "examples")
    path, question, *_ = next((row for row in examples if "pattern" in row[1]), examples[0])
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    view = handlers.explain_view(image, question, EMBEDDED, [s.default for s in SETTINGS])
    if not view.status.startswith("Done"):
        raise SystemExit(f"the run failed: {view.status}")
    session = view.session
    return save_png(slide_image(session, session.result.layer), FOLDER / "slide-export.png")


if __name__ == "__main__":
    browser_shots()
    print(f"wrote {slide_shot()} and the browser screenshots in {FOLDER}")
