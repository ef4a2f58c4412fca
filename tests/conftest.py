"""Shared fixtures: tiny image folders written on the fly.

`image_tree` is a clean folder-per-class set a small CNN learns in a few epochs
(classes differ in colour and stripe direction). `messy_tree` holds every kind
of file a real folder throws at the scan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

COLOURS = {
    "red": (200, 40, 40), "green": (40, 180, 60), "blue": (40, 60, 200),
    "yellow": (220, 210, 40), "purple": (140, 40, 170), "cyan": (40, 200, 210),
}


def class_image(index: int, name: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A noisy RGB image whose colour and stripe direction depend on the class."""
    colour = np.array(COLOURS.get(name, rng.integers(30, 220, 3)), dtype=np.float64)
    yy, xx = np.mgrid[0:size, 0:size]
    stripes = [(yy // 4) % 2, (xx // 4) % 2, ((xx + yy) // 4) % 2][index % 3]
    image = colour * (0.75 + 0.5 * stripes[..., None]) * rng.uniform(0.8, 1.2)
    image += rng.normal(0, 12, (size, size, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_image_tree(
    root: Path,
    classes: tuple[str, ...] = ("red", "green", "blue"),
    per_class: int = 12,
    size: int = 32,
    seed: int = 0,
) -> Path:
    """root/<class>/NNN.png|jpg: even-numbered files PNG, odd ones JPEG."""
    rng = np.random.default_rng(seed)
    for k, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = Image.fromarray(class_image(k, name, rng, size))
            if i % 2:
                image.save(folder / f"{i:03d}.jpg", quality=90)
            else:
                image.save(folder / f"{i:03d}.png")
    return root


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


def jpeg_bytes(size: int = 32, seed: int = 1) -> bytes:
    import io

    buf = io.BytesIO()
    Image.fromarray(class_image(0, "red", np.random.default_rng(seed), size)).save(buf, "JPEG")
    return buf.getvalue()


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
