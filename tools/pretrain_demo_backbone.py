"""Pretrain the backbone bundled for the demo: resources/backbones/ (MobileNetV2, width 0.35, 64 px).

Without internet access the ImageNet weights cannot be downloaded, and a re-initialised
MobileNetV2 learns little from the demo's 240 images. This script pretrains the same
architecture on the six Fashion-MNIST classes that are NOT in the demo (T-shirt/top,
pullover, coat, sandal, shirt, ankle boot), so the demo (bag, dress, sneaker, trouser)
shows real transfer offline: new classes, related images.

Source: Debian's `dataset-fashion-mnist` package (Zalando Research, MIT licence):

    apt-get install dataset-fashion-mnist
    python tools/pretrain_demo_backbone.py [--source /usr/share/datasets/fashion-mnist]

It exports the first PER_CLASS training images of each class (and the first VAL_PER_CLASS
test images) as 28x28 greyscale PNGs into a work folder, each image turned by 0, 90, 180 or
270 degrees and filed under class and turn (24 labels: features that keep shape and
orientation transfer better than ones that only tell six classes apart), trains them through Workbench's
own `core/train/run.py: run` from re-initialised weights (weights "none", so BatchNorm
momentum 0.9 and precise BatchNorm before each validation, see docs/measured.md), then
saves the trained backbone with `core/engine/weights.save_backbone_weights` and writes the
saved-backbone info and a README with the figures reached. Fixed seed; on a CPU the result
is reproducible up to floating-point order. Not run at install time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_demo_dataset import read_idx  # noqa: E402  (tools/ is not a package)

# Fashion-MNIST label -> folder name: the six classes the demo (1, 3, 7, 8) does not use.
CLASSES = {0: "tshirt-top", 2: "pullover", 4: "coat", 5: "sandal", 6: "shirt", 9: "ankle-boot"}
ROTATIONS = (0, 90, 180, 270)  # each image is filed under its class and one of these turns (degrees)
PER_CLASS = 2000  # training images per class (train split), a quarter in each rotation
VAL_PER_CLASS = 100  # validation images per class (test split), a quarter in each rotation
IMAGE_SIZE = 64  # the demo's image size (ui/defaults.py: first_launch_config)
WIDTH = 0.35
EPOCHS = 10
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
SEED = 1234
FILE_NAME = "mobilenetv2-0.35-64px-fashion6.weights.h5"


def export(source: Path, split: str, count: int, out: Path) -> None:
    """The first `count` images of each class of one split, as PNGs: out/<class>-rot<degrees>/NNNN.png.

    Image n of a class is turned by ROTATIONS[n % 4] and filed under that rotation: the task is
    the class and how it is turned (24 labels). Telling the turns apart makes the features keep
    shape and orientation (a trouser's two upright legs, a bag's wide body) instead of collapsing
    onto the six classes, so they transfer to the demo's classes (measured: see the README).
    """
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(source / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(source / f"{prefix}-labels-idx1-ubyte.gz")
    for label, name in CLASSES.items():
        for degrees in ROTATIONS:
            (out / f"{name}-rot{degrees}").mkdir(parents=True, exist_ok=True)
        for n, index in enumerate(np.flatnonzero(labels == label)[:count]):
            degrees = ROTATIONS[n % len(ROTATIONS)]
            image = np.rot90(images[index], k=degrees // 90)
            Image.fromarray(np.ascontiguousarray(image), "L").save(out / f"{name}-rot{degrees}" / f"{n:04d}.png")


def make_config(train: Path, val: Path, epochs: int):  # -> RunConfig
    from workbench.core.config.run import RunConfig

    config = RunConfig(name="demo-backbone-pretraining")
    config.data.folder = str(train)
    config.data.validation_folder = str(val)
    config.data.image_size = IMAGE_SIZE
    config.backbone.name = "MobileNetV2"
    config.backbone.width = WIDTH
    config.backbone.weights = "none"
    config.freeze.policy = "none"
    config.dropout.rate = 0.2
    config.training.epochs = epochs
    config.training.batch_size = BATCH_SIZE
    config.training.learning_rate = LEARNING_RATE
    config.training.seed = SEED
    config.training.keep_best = True
    config.training.monitor = "val_accuracy"
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--out", type=Path, default=REPO / "resources" / "backbones")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--per-class", type=int, default=PER_CLASS)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args(argv)

    work = args.work or Path(tempfile.mkdtemp(prefix="workbench-pretrain-"))
    train, val = work / "train", work / "val"
    for folder in (train, val):
        shutil.rmtree(folder, ignore_errors=True)
    export(args.source, "train", args.per_class, train)
    export(args.source, "test", VAL_PER_CLASS, val)
    print(f"exported {args.per_class} + {VAL_PER_CLASS} images per class into {work}", flush=True)

    from workbench.core.base.events import EpochEnd, Message, RunFailed
    from workbench.core.engine.saving import load_model
    from workbench.core.engine.weights import save_backbone_weights
    from workbench.core.runs.store import MODEL_FILE
    from workbench.core.train.run import run

    def emit(event: object) -> None:
        if isinstance(event, EpochEnd):
            logs = " ".join(f"{k}={v:.4f}" for k, v in sorted(event.logs.items()))
            print(f"epoch {event.epoch + 1}: {logs} ({event.seconds:.0f} s)", flush=True)
        elif isinstance(event, Message):
            print(f"[{event.level}] {event.text}", flush=True)

    config = make_config(train, val, args.epochs)
    started = time.monotonic()
    result = run(config, emit, runs_dir=work / "runs")
    seconds = time.monotonic() - started
    if isinstance(result, RunFailed):
        print(f"pretraining failed: {result.error}\n{result.details}", file=sys.stderr)
        return 1

    run_dir = Path(result.run_dir)
    target = save_backbone_weights(load_model(run_dir / MODEL_FILE, compile=False), args.out / FILE_NAME)
    best = {k: round(float(v), 4) for k, v in result.best.items()}
    size = target.stat().st_size
    info = {
        "backbone": "MobileNetV2", "width": WIDTH, "image_size": IMAGE_SIZE,
        "run": "", "run_name": "Fashion-MNIST, 6 classes not in the demo, each in 4 rotations (bundled)",
        "classes": list(CLASSES.values()), "rotations": list(ROTATIONS), "train_images": args.per_class * len(CLASSES),
        "validation_images": VAL_PER_CLASS * len(CLASSES), "epochs": result.epochs_done,
        "seed": SEED, "best": best, "seconds": round(seconds), "bytes": size,
    }
    (target.with_name(FILE_NAME[: -len(".weights.h5")] + ".json")).write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    print(f"saved {target} ({size / 1e6:.2f} MB) after {seconds:.0f} s; cores: {os.cpu_count()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
