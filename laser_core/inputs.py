"""Checking and normalising what users hand in: images (any mode, or a path) and questions.

Every problem is a ValueError whose message a user can act on; nothing else escapes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_ASPECT = 200  # Qwen's smart_resize refuses more; a 1 x 4000 strip has nothing to look at
MAX_PIXELS = 20_000 * 20_000  # refuse decompression bombs before decoding them


def load_image(image: Image.Image | str | os.PathLike[str], *, min_side: int = 1) -> Image.Image:
    """An RGB copy of `image` (a PIL image or a path), checked for size.

    Converts every mode: RGBA and LA (composited on white), P (through its palette), L, I;16 and
    other 16-bit modes (scaled to 8 bit), CMYK, YCbCr. Applies the EXIF orientation of files.

    Raises:
        ValueError: missing or unreadable file, or an image too small or too elongated.
    """
    if isinstance(image, (str, os.PathLike)):
        image = _open(Path(image))
    if not isinstance(image, Image.Image):
        raise ValueError(f"expected a PIL image or a file path, got {type(image).__name__}")
    rgb = to_rgb(image)
    width, height = rgb.size
    if min(width, height) < min_side:
        raise ValueError(
            f"the image is {width} x {height} pixels; this model needs at least {min_side} pixels "
            "on each side (one vision patch)"
        )
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ValueError(
            f"the image is {width} x {height} pixels: an aspect ratio over {MAX_ASPECT}:1 "
            "cannot be encoded"
        )
    return rgb


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
        gray = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, mode="L").convert("RGB")
    return image.convert("RGB")


def check_question(question: object) -> str:
    """The question stripped of surrounding whitespace; ValueError if it is not usable text."""
    if not isinstance(question, str):
        raise ValueError(f"the question must be text, got {type(question).__name__}")
    text = " ".join(question.split())
    if not text:
        raise ValueError("the question is empty: type a question about the image")
    return text


def _open(path: Path) -> Image.Image:
    if not path.exists():
        raise ValueError(f"no such image file: {path}")
    if not path.is_file():
        raise ValueError(f"not a file: {path}")
    try:
        with Image.open(path) as opened:
            if opened.width * opened.height > MAX_PIXELS:
                raise ValueError(
                    f"the image {path} is too large ({opened.width} x {opened.height})"
                )
            upright = ImageOps.exif_transpose(opened)
            upright.load()
            return upright.copy()
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"cannot read {path} as an image ({error})") from None
    except Image.DecompressionBombError:
        raise ValueError(f"the image {path} is too large to decode safely") from None
