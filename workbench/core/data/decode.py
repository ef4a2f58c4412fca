"""One image file -> RGB pixels, the same way for the scan, training and prediction."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from workbench.core.base.images import SUPPORTED_FORMATS


def load_image(path: str | os.PathLike, image_size: int | None = None) -> np.ndarray:
    """Decode one file to an RGB uint8 array, resized to image_size x image_size when given.

    Raises on unreadable files. Prediction must use this too, so that a model
    sees images exactly as it did in training.
    """
    from PIL import Image, ImageOps

    with Image.open(path) as img:
        if image_size and img.format in ("JPEG", "MPO"):
            img.draft("RGB", (image_size, image_size))  # decode at 1/2..1/8 scale: faster, less memory
        img.load()
        if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation: show it as a viewer would
            img = ImageOps.exif_transpose(img)
        img = _to_rgb(img)
        if image_size and img.size != (image_size, image_size):
            img = img.resize((image_size, image_size), Image.Resampling.BILINEAR, reducing_gap=3.0)
        return np.asarray(img, dtype=np.uint8)


def _to_rgb(img: Any) -> Any:
    """RGB whatever the mode; 16/32-bit greys are scaled, not clipped as Pillow's convert does."""
    from PIL import Image

    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        a = np.asarray(img, dtype=np.float64)
        if img.mode != "F" or a.max() > 255:
            a = a / 257.0  # 0..65535 -> 0..255
        grey = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # avoids Pillow's palette-transparency warning
    return img.convert("RGB")


# Above this many pixels a PNG is checked chunk by chunk (CRCs, through to its end) instead of
# decoded: decoding an 8000x8000 PNG takes ~183 MiB per scanning thread for an image that
# training then reads shrunk anyway.
VERIFY_ONLY_PIXELS = 16_000_000


def check_image(path: str | os.PathLike) -> str | None:
    """Why this file cannot be used, in words, or None when it decodes as a supported image."""
    from PIL import Image, UnidentifiedImageError

    try:
        if os.path.getsize(path) == 0:
            return "the file is empty (0 bytes)"
        with Image.open(path) as img:
            kind = SUPPORTED_FORMATS.get(img.format or "")
            if kind is None:
                return f"{img.format} images are not supported (use JPEG, PNG, BMP or GIF)"
            if kind == "JPEG":
                img.draft("RGB", (1, 1))  # smallest scale: still reads every byte, so truncation shows
            if img.format == "PNG" and img.width * img.height > VERIFY_ONLY_PIXELS:
                img.verify()  # every chunk's checksum, no pixels: a truncated file still shows
            else:
                img.load()  # a GIF loads its first frame
        return None
    except UnidentifiedImageError:
        return "not an image (its contents are not JPEG, PNG, BMP or GIF, whatever its name says)"
    except Image.DecompressionBombError:
        return "the image is too large to load safely"
    except PermissionError:
        return "cannot read the file (permission denied)"
    except FileNotFoundError:
        return "the file disappeared during the scan"
    except OSError as exc:
        if "truncated" in str(exc).lower():
            return "the file is incomplete (truncated); it may have been cut off while copying"
        return f"the file is damaged ({exc})"
    except Exception as exc:  # Pillow raises many kinds on broken data
        return f"the file is damaged ({type(exc).__name__}: {exc})"
