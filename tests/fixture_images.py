"""Image generators shared by the tests (imported by name, so not in a conftest)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
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


def jpeg_bytes(size: int = 32, seed: int = 1) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(class_image(0, "red", np.random.default_rng(seed), size)).save(buf, "JPEG")
    return buf.getvalue()


def noise_images(count: int, size: int = 32, seed: int = 3) -> np.ndarray:
    """Uniform noise, uint8 (N, S, S, 3): a set clearly unlike any class images."""
    return np.random.default_rng(seed).integers(0, 256, (count, size, size, 3), dtype=np.uint8)


def write_flat_images(root: Path, count: int, size: int = 32, seed: int = 0) -> Path:
    """root/NNN.png: images with no class folders (a GAN's training set can be just a folder)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        Image.fromarray(class_image(i, "red", rng, size)).save(root / f"{i:03d}.png")
    return root
