"""One decode per file kind: tf.io inside the graph for plain JPEG/PNG/GIF/BMP, Pillow for the rest,
and the same array through training, evaluation and prediction."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.core.analysis.evaluation import evaluate_run
from workbench.core.analysis.predict import RunModel, predict_images, read_image
from workbench.core.config.run import RunConfig
from workbench.core.data import decode, pipeline, scan

SIZE = 48
NATIVE = ("photo.jpg", "photo.png", "photo.gif", "photo.bmp", "grey.jpg", "alpha.png", "large.jpg")
PILLOW = ("cmyk.jpg", "deep-16bit.png", "turned.jpg", "see-through.gif", "palette.bmp")


def photo(height: int = 75, width: int = 100, seed: int = 0) -> Image.Image:
    """Smooth structure plus noise, like a small photograph."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] * (100 / width)
    pixels = np.stack([np.sin(xx / 9) * 70 + 120, np.cos(yy / 7) * 70 + 120, (xx + yy) * 1.1 + 10], -1)
    return Image.fromarray(np.clip(pixels + rng.normal(0, 10, pixels.shape), 0, 255).astype(np.uint8))


@pytest.fixture
def kinds(tmp_path) -> Path:
    """Two classes: every native kind in one, every Pillow kind in the other."""
    native, odd = tmp_path / "kinds" / "native", tmp_path / "kinds" / "odd"
    native.mkdir(parents=True)
    odd.mkdir()
    img = photo()
    img.save(native / "photo.jpg", quality=90)
    img.save(native / "photo.png")
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(native / "photo.gif")
    img.save(native / "photo.bmp")
    img.convert("L").save(native / "grey.jpg", quality=90)
    img.convert("RGBA").save(native / "alpha.png")
    photo(600, 800, seed=1).save(native / "large.jpg", quality=90)  # decoded at 1/8 scale, as Pillow's draft
    img.convert("CMYK").save(odd / "cmyk.jpg", quality=90)
    Image.fromarray(np.asarray(img.convert("L"), np.uint16) * 257).save(odd / "deep-16bit.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees
    img.save(odd / "turned.jpg", quality=90, exif=exif)
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(odd / "see-through.gif", transparency=0)
    img.convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(odd / "palette.bmp")
    return tmp_path / "kinds"


def by_name(paths, arrays) -> dict[str, np.ndarray]:
    return {os.path.basename(p): np.asarray(a, np.float64) for p, a in zip(paths, arrays, strict=True)}


class Recorder:
    """Stands in for a model: keeps the images it is given, answers uniformly."""

    def __init__(self, classes: int) -> None:
        self.classes, self.seen = classes, []

    def predict(self, images, batch_size=32, verbose=0):
        self.seen.append(np.array(images))
        return np.full((len(images), self.classes), 1 / self.classes, np.float32)


def test_the_scan_sends_only_what_tf_io_cannot_match_to_pillow(kinds):
    report = scan.scan_folder(kinds)
    assert not report.problems
    assert sorted(os.path.basename(p) for p in report.pillow_paths) == sorted(PILLOW)
    for name in NATIVE:
        assert not decode.needs_pillow(kinds / "native" / name)
    for name in PILLOW:
        assert decode.needs_pillow(kinds / "odd" / name)


def test_the_same_file_gives_the_same_array_in_training_evaluation_and_prediction(kinds):
    report = scan.scan_folder(kinds)
    paths = [p for p, _ in report.items]
    ds = pipeline.make_dataset(report.items, 2, SIZE, 4, training=False, pillow_paths=report.pillow_paths)
    training = by_name(paths, np.concatenate([x.numpy() for x, _ in ds]))

    model = Recorder(2)
    run = RunModel(model, report.class_names, SIZE)
    assert all(p.ok for p in predict_images(run, paths))
    predicted = by_name(paths, np.concatenate(model.seen))

    config = RunConfig()
    config.data.folder = config.data.validation_folder = str(kinds)  # evaluate on every file
    model.seen.clear()
    evaluate_run(RunModel(model, report.class_names, SIZE, kinds, config), save=False)
    evaluated = by_name(paths, np.concatenate(model.seen))

    assert set(training) == set(NATIVE) | set(PILLOW)
    for name, image in training.items():
        assert image.shape == (SIZE, SIZE, 3)
        for other in (predicted[name], evaluated[name], read_image(paths[[os.path.basename(p) for p in paths]
                                                                         .index(name)], SIZE)[0]):
            diff = np.abs(image - other)
            assert diff.max() <= 2 and diff.mean() < 0.1, name  # identical in practice: one decoder


def test_native_and_pillow_decoders_agree_within_resize_rounding(kinds):
    # Not needed for identity (each file always takes one route), but a file read either way
    # must look alike to a model: the routes differ by JPEG IDCT rounding and by antialiasing
    # (Pillow's BILINEAR widens its filter when shrinking; the native route, like a plain tf.io
    # pipeline, does not below 3x), which shows on fine noise and sharp edges.
    for name in NATIVE:
        path = str(kinds / "native" / name)
        (native, _), = decode.decode_files([path], SIZE, pillow=[False])
        (pillow, _), = decode.decode_files([path], SIZE, pillow=[True])
        np.testing.assert_array_equal(pillow, decode.load_image(path, SIZE))
        diff = np.abs(native.astype(int) - pillow)
        assert diff.max() <= 48 and diff.mean() < 4, (name, diff.max(), diff.mean())
    turned, _ = read_image(str(kinds / "odd" / "turned.jpg"), SIZE)
    np.testing.assert_array_equal(turned, decode.load_image(kinds / "odd" / "turned.jpg", SIZE))


def test_files_that_break_after_the_scan_are_skipped_and_counted(kinds):
    report = scan.scan_folder(kinds)
    native = kinds / "native"
    (native / "photo.gif").unlink()  # deleted
    (native / "photo.jpg").write_bytes((native / "photo.jpg").read_bytes()[:500])  # cut short
    (native / "grey.jpg").write_text("not a picture any more")  # replaced
    png = bytearray((native / "photo.png").read_bytes())
    png[len(png) // 2] ^= 0xFF  # one flipped byte: libpng would refuse the chunk, the CRC check sees it first
    (native / "photo.png").write_bytes(bytes(png))
    (kinds / "odd" / "cmyk.jpg").unlink()  # a Pillow-route file
    counter = pipeline.SkipCounter()
    ds = pipeline.make_dataset(report.items, 2, SIZE, 4, training=True, seed=0, skip_counter=counter,
                               pillow_paths=report.pillow_paths)
    for _ in range(2):  # each file counts once however many epochs skip it
        images = sum(int(x.shape[0]) for x, _ in ds)
    assert images == len(report.items) - 5
    assert sorted(os.path.basename(p) for p in counter.paths) == [
        "cmyk.jpg", "grey.jpg", "photo.gif", "photo.jpg", "photo.png"]
    results = decode.decode_files([str(native / "photo.jpg"), str(native / "photo.bmp")], SIZE)
    assert results[0][0] is None and "truncated" in results[0][1]
    assert results[1][0] is not None and results[1][1] == ""
