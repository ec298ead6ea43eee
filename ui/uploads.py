"""Taking an image in: only files Gradio stored as uploads, size and pixels checked before
decoding, downscaled to the working resolution.

The model events receive the raw upload payload (`{"path": ..., "orig_name": ...}`), which any
API client can forge, and Gradio checks a path only when the payload carries its `meta` marker.
So `read_upload` opens a path only if it lies in Gradio's upload folder, and answers every other
path with one message, whether or not it exists. It refuses files over `max_upload_mb` and
images over `max_pixels` (read from the header: nothing is decoded), decodes JPEGs at reduced
scale where possible, and downscales to `work_side` (METHOD.md: the app may; the library crops
from the image it is given). Messages name the file by its upload name, never by its path.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gradio.utils import get_upload_folder
from PIL import Image, UnidentifiedImageError

from laser_core.inputs import to_rgb
from ui.limits import HostingLimits, hosting_limits

NO_IMAGE = "No image yet: upload one (drag and drop, paste or webcam) or pick an example."
NOT_ARRIVED = "The upload did not arrive: please upload the image again."
NOT_AN_UPLOAD = (
    "This image is not a file uploaded to this app: upload it again "
    "(from the API, send it with gradio_client.handle_file)."
)
FORMATS = "PNG, JPEG, WebP, GIF, BMP or TIFF"
_ORIENTATION = {  # EXIF orientation tag -> the transpose that makes the image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class Intake:
    """An upload, ready for a model event."""

    image: Image.Image  # RGB, long side <= work_side: what the model sees and boxes refer to
    upload_size: tuple[int, int]  # (width, height) of the image as uploaded

    @property
    def downscaled(self) -> bool:
        return self.image.size != self.upload_size


def read_upload(image: Any, limits: HostingLimits | None = None) -> Intake:
    """The working RGB image of an upload payload (or, in-process, of a PIL image or array).

    Raises:
        ValueError: no image, not an upload of this app, too large, or not readable, in words
            that never depend on what exists on the server outside the upload folder.
    """
    limits = limits or hosting_limits()
    if image is None:
        raise ValueError(NO_IMAGE)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if isinstance(image, Image.Image):
        _check_pixels(image.size, "The image", limits)
        return Intake(to_rgb(_shrink(image, limits.work_side)), image.size)
    if not isinstance(image, dict):
        raise ValueError(NOT_AN_UPLOAD)
    path, name = upload_path(image)
    size = path.stat().st_size
    if size > limits.max_upload_bytes:
        raise ValueError(
            f"{name} is {size / 1e6:.1f} MB; this app takes images of up to "
            f"{limits.max_upload_mb:g} MB."
        )
    return _decode(path, name, limits)


def upload_path(payload: dict[str, Any]) -> tuple[Path, str]:
    """The file of an upload payload, if it lies in Gradio's upload folder, and its name as shown
    to the user (“name”, from the upload's original name).

    Raises:
        ValueError: no path, or any path that is not a file in the upload folder (one message).
    """
    path = payload.get("path")
    if not isinstance(path, str) or not path.strip():
        raise ValueError(NOT_ARRIVED)
    root = Path(get_upload_folder()).resolve()
    try:
        real = Path(path).resolve()  # symlinks and ".." resolved before the check
        inside = real != root and real.is_relative_to(root) and real.is_file()
    except (OSError, RuntimeError, ValueError):  # e.g. a NUL byte, a symlink loop
        inside = False
    if not inside:
        raise ValueError(NOT_AN_UPLOAD)
    original = payload.get("orig_name")
    shown = original if isinstance(original, str) and original.strip() else real.name
    return real, f"“{shown.strip()[:80]}”"


def _decode(path: Path, name: str, limits: HostingLimits) -> Intake:
    """Header first (pixel limit), then a reduced-scale decode where the format allows it."""
    unreadable = f"{name} cannot be read as an image: upload a {FORMATS} file."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            opened = Image.open(path)  # reads the header only
        except Image.DecompressionBombError:  # over twice Pillow's limit: far over ours
            raise ValueError(_too_many_pixels(name, None, limits)) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
            raise ValueError(unreadable) from None
        with opened:
            _check_pixels(opened.size, name, limits)
            upload_size = opened.size
            try:
                orientation = opened.getexif().get(0x0112, 1)
                opened.draft(None, _fit(opened.size, limits.work_side))  # JPEG: decode smaller
                opened.load()
                small = _shrink(opened, limits.work_side)
            except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError):
                raise ValueError(unreadable) from None
    if orientation in _ORIENTATION:
        small = small.transpose(_ORIENTATION[orientation])
        upload_size = upload_size if orientation < 5 else (upload_size[1], upload_size[0])
    return Intake(to_rgb(small), upload_size)


def _check_pixels(size: tuple[int, int], name: str, limits: HostingLimits) -> None:
    if size[0] * size[1] > limits.max_pixels:
        raise ValueError(_too_many_pixels(name, size, limits))


def _too_many_pixels(name: str, size: tuple[int, int] | None, limits: HostingLimits) -> str:
    limit = f"this app reads images of up to {limits.max_pixels / 1e6:g} megapixels"
    if size is None:
        return f"{name} has too many pixels: {limit}. Downscale it first."
    width, height = size
    return f"{name} is {width} × {height} pixels; {limit}. Downscale it first."


def _fit(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(width, height) scaled so the long side is at most `side`, aspect kept."""
    width, height = size
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _shrink(image: Image.Image, side: int) -> Image.Image:
    """A copy whose long side is at most `side` (reduce by whole factors, then Lanczos)."""
    target = _fit(image.size, side)
    if target == image.size:
        return image.copy()
    if image.mode in ("1", "P"):  # these modes resize by nearest neighbour only
        image = image.convert("L" if image.mode == "1" else "RGBA")
    try:
        return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    except ValueError:  # a mode Pillow cannot resample (e.g. big-endian 16 bit): RGB first
        return to_rgb(image).resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
