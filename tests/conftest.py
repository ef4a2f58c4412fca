"""Shared fixtures: tiny image folders written on the fly.

`image_tree` is a clean folder-per-class set a small CNN learns in a few epochs
(classes differ in colour and stripe direction). `messy_tree` holds every kind
of file a real folder throws at the scan.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from fixture_images import class_image, jpeg_bytes, write_image_tree
from PIL import Image

# Training processes yield the CPU to the window (core/child_process.py, nice 5). The suite runs
# one pytest process per core, and a niced run would wait behind the other one's work.
os.environ.setdefault("WORKBENCH_TRAINING_NICE", "0")


@pytest.fixture(autouse=True)
def private_feature_cache(tmp_path_factory, monkeypatch):
    """Runs with a frozen backbone cache features: keep them out of the home folder."""
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path_factory.mktemp("feature-cache")))


@pytest.fixture
def make_image_tree(tmp_path):
    """Factory: make_image_tree(name="data", **write_image_tree options) -> folder."""

    def make(name: str = "data", **options) -> Path:
        return write_image_tree(tmp_path / name, **options)

    return make


@pytest.fixture
def image_tree(make_image_tree) -> Path:
    """Three classes (blue, green, red) x 12 images of 32x32, PNG and JPEG mixed."""
    return make_image_tree()


@pytest.fixture
def messy_tree(tmp_path) -> Path:
    """A folder with every kind of trouble. Usable: cat 6 (incl. one nested, one PNG named .jpg),
    "чай ☕" 4 (non-ASCII names). Left out with a reason: empty.jpg (0 bytes), cut.jpg
    (truncated JPEG), notes.jpg (text), scan.tiff (unsupported); class 'nothing' has only a
    broken file. Ignored and counted: readme.txt, labels.json, Thumbs.db (3). Skipped silently:
    .hidden.png, .DS_Store, .git/. At the top level: stray.png (reported), README.md (silent).
    """
    root = write_image_tree(tmp_path / "messy", classes=("cat",), per_class=4)
    write_image_tree(root, classes=("чай ☕",), per_class=4, seed=1)
    cat, tea = root / "cat", root / "чай ☕"
    (tea / "000.png").rename(tea / "картинка 猫.png")

    rng = np.random.default_rng(2)
    nested = cat / "more" / "deeper"
    nested.mkdir(parents=True)
    Image.fromarray(class_image(0, "cat", rng)).save(nested / "inner.png")
    Image.fromarray(class_image(0, "cat", rng)).save(cat / "actually_png.jpg", format="PNG")

    (cat / "empty.jpg").write_bytes(b"")
    (cat / "cut.jpg").write_bytes(jpeg_bytes(64)[:400])
    (cat / "notes.jpg").write_text("this is not a picture\n")
    Image.fromarray(class_image(0, "cat", rng)).save(cat / "scan.tiff")
    for name in ("readme.txt", "labels.json", "Thumbs.db"):
        (cat / name).write_text("{}")
    Image.fromarray(class_image(0, "cat", rng)).save(cat / ".hidden.png")
    (cat / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")

    hidden = root / ".git"
    hidden.mkdir()
    Image.fromarray(class_image(0, "git", rng)).save(hidden / "x.png")
    (root / "nothing").mkdir()
    (root / "nothing" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    Image.fromarray(class_image(0, "stray", rng)).save(root / "stray.png")
    (root / "README.md").write_text("notes")
    return root


def write_solid_png(path: Path, width: int, height: int, rgb: tuple[int, int, int] = (90, 140, 200)) -> Path:
    """A solid-colour RGB PNG of any size, written row by row: memory stays at one row."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    packer = zlib.compressobj(1)
    row = b"\x00" + bytes(rgb) * width  # filter byte 0, then the pixels
    compressed = [packer.compress(row) for _ in range(height)]
    compressed.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(compressed))
                     + chunk(b"IEND", b""))
    return path


HUGE_SIDE = 8000


@pytest.fixture(scope="session")
def huge_png(tmp_path_factory) -> Path:
    """An 8000 x 8000 PNG (192 MB of pixels, under 1 MB on disk), made once per session."""
    return write_solid_png(tmp_path_factory.mktemp("huge") / "huge.png", HUGE_SIDE, HUGE_SIDE)


@pytest.fixture
def messier_tree(messy_tree, huge_png) -> Path:
    """`messy_tree` plus the image kinds real folders hold and the scan must decode.

    Class "dog" (9 usable): CMYK JPEG, 16-bit greyscale PNG, palette GIF with transparency,
    RGBA PNG, greyscale PNG and JPEG, an 8000 x 8000 PNG, and two plain images; plus a hidden
    .thumb.jpg (skipped silently). Class "empty" is a folder with nothing in it (reported).
    So: cat 6, dog 9, "чай ☕" 4 usable; 9 problems, none blocking. Tests that need a file
    deleted after the scan delete one themselves (e.g. dog/plain-1.jpg).
    """
    root = messy_tree
    dog = root / "dog"
    dog.mkdir()
    rng = np.random.default_rng(3)
    rgb = Image.fromarray(class_image(2, "dog", rng, 40))
    rgb.convert("CMYK").save(dog / "cmyk.jpg", quality=90)
    grey16 = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    Image.fromarray(grey16).save(dog / "deep-16bit.png")  # mode I;16
    rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(dog / "palette.gif", transparency=0)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.full((40, 40), 128, np.uint8)))
    rgba.save(dog / "alpha.png")
    rgb.convert("L").save(dog / "grey.png")
    rgb.convert("L").save(dog / "grey.jpg", quality=90)
    (dog / "huge.png").write_bytes(huge_png.read_bytes())
    for i in range(2):
        Image.fromarray(class_image(2, "dog", rng)).save(dog / f"plain-{i}.jpg", quality=90)
    rgb.save(dog / ".thumb.jpg")
    (root / "empty").mkdir()
    return root
