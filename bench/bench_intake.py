"""Peak memory of taking an upload in, and of one run on a large upload, in fresh processes.

1. `ui.uploads.read_upload` at the pixel limit, per format: 40 Mpx (7300 x 5470, the default
   LASER_MAX_PIXELS) of random content. Such files exceed the app's upload limit, which is raised
   for this measurement only: decoded memory depends on pixels, not on file size.
2. One `ui.handlers.explain_view` (the Run button, embedded model) on a flat PNG of 6000 x 6000
   (36 Mpx) and of 12000 x 12000 (144 Mpx, a 446 KB file), given as an upload payload.

Each figure is a fresh process's peak RSS (VmHWM, reset just before through
/proc/self/clear_refs) above its RSS before the call, and for the runs also what it still holds
after (the run's session included). `--root` points at another checkout of the app, e.g. the
code before the hosting limits, to measure it the same way (part 1 needs `ui/uploads.py`).

    OMP_WAIT_POLICY=PASSIVE python bench/bench_intake.py [--root DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
from bench_load import blank_png  # a flat PNG of any size, written row by row
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SIZE = (7300, 5470)  # 39.9 Mpx
PRELUDE = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

path = Path(sys.argv[1])
payload = {"path": str(path), "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}
"""
INTAKE = """
from ui.uploads import read_upload
Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS")
intake = read_upload(payload)
print(f"intake {path.name}: {intake.upload_size} -> {intake.image.size}, "
      f"+{status('VmHWM') - before:.0f} MB peak")
"""
RUN = """
from ui import handlers, models
from ui.settings import SETTINGS
settings = [s.default for s in SETTINGS]
models.load_runner(models.EMBEDDED)
Path("/proc/self/clear_refs").write_text("5")
before = status("VmRSS")
view = handlers.explain_view(payload, "what colour", None, settings)
print(f"run {path.name}: {view.status[:60]!r}..., +{status('VmHWM') - before:.0f} MB peak, "
      f"+{status('VmRSS') - before:.0f} MB held after")
"""


def noisy_images(folder: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (SIZE[1] // 10, SIZE[0] // 10, 4), dtype=np.uint8)
    rgba = Image.fromarray(small, "RGBA").resize(SIZE)
    gray = np.asarray(rgba.convert("L")).astype(np.uint16) * 257
    files = {
        "rgba.png": lambda p: rgba.save(p, compress_level=1),
        "photo.jpg": lambda p: rgba.convert("RGB").save(p, quality=90),
        "gray16.png": lambda p: Image.fromarray(gray).save(p),
        "palette.png": lambda p: rgba.convert("P", palette=Image.Palette.ADAPTIVE).save(p),
    }
    for name, save in files.items():
        save(folder / name)
    return [folder / name for name in files]


def measure(code: str, path: Path, root: Path) -> None:
    env = {**os.environ, "LASER_MAX_UPLOAD_MB": "1000"}
    out = subprocess.run(
        [sys.executable, "-c", PRELUDE + code, str(path), str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=root,
    )
    lines = out.stdout.strip().splitlines()
    result = lines[-1] if lines else out.stderr.strip()[-300:]
    print(f"{result} ({path.stat().st_size / 1e6:.2f} MB file)")


def main() -> None:
    from gradio.utils import get_upload_folder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to measure")
    root = parser.parse_args().root.resolve()
    folder = Path(get_upload_folder()) / f"bench-intake-{uuid.uuid4().hex}"  # as uploads are
    folder.mkdir(parents=True)
    try:
        if (root / "ui" / "uploads.py").is_file():
            for path in noisy_images(folder):
                measure(INTAKE, path, root)
        for side in (6000, 12000):
            measure(RUN, blank_png(folder / f"flat{side}.png", side, side), root)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
