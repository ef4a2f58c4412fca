"""Which files are images: the formats Workbench trains on and the endings it opens."""

from __future__ import annotations

import os

# Pillow format names we train on; MPO is how Pillow names many camera JPEGs.
SUPPORTED_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "BMP": "BMP", "GIF": "GIF"}


# Files with these endings are opened and checked; anything else in a class folder is ignored.
IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .jfif .png .bmp .dib .gif .tif .tiff .webp .heic .heif .avif "
    ".ico .ppm .pgm .pbm .pnm .tga .jp2 .j2k .psd .svg".split()
)


# The endings of the formats above: what Predict offers to open (the others are refused by training too).
TRAINED_EXTENSIONS = frozenset(".jpg .jpeg .jpe .jfif .png .bmp .dib .gif".split())


def is_image_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
