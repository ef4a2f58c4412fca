"""Regenerate resources/demo/ (the demo dataset) from Fashion-MNIST's test split.

Source: Debian's `dataset-fashion-mnist` package (Zalando Research, MIT licence):
    apt-get install dataset-fashion-mnist
    python tools/make_demo_dataset.py [--source /usr/share/datasets/fashion-mnist] [--out resources/demo]

Takes the first PER_CLASS test images of four classes a small network tells apart
easily and writes them as 28x28 greyscale PNGs: <out>/<class>/NNN.png. Deterministic:
the same source gives byte-identical files. Not run at install time.
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image

# Fashion-MNIST label -> folder name; chosen to look clearly different from one another.
CLASSES = {1: "trouser", 3: "dress", 7: "sneaker", 8: "bag"}
PER_CLASS = 60


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format): big-endian header of dimension sizes, then uint8 data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "resources" / "demo")
    args = parser.parse_args(argv)

    images = read_idx(args.source / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(args.source / "t10k-labels-idx1-ubyte.gz")
    for label, name in CLASSES.items():
        folder = args.out / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        for n, index in enumerate(np.flatnonzero(labels == label)[:PER_CLASS]):
            Image.fromarray(images[index], "L").save(folder / f"{n:03d}.png", optimize=True)
        print(f"{name}: {PER_CLASS} images")


if __name__ == "__main__":
    main()
