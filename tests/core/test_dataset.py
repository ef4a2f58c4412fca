"""Scanning, splitting and the tf.data pipelines, on tiny image folders."""

from __future__ import annotations

import io
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from workbench.core.config.run import AugmentConfig, DataConfig
from workbench.core.data import decode, pipeline, scan, splits

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


def batches(ds):
    """All (images, labels) of one pass, concatenated, as numpy."""
    xs, ys = zip(*((x.numpy(), y.numpy()) for x, y in ds), strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def reason_for(report, name):
    found = [p.message for p in report.problems if p.message.startswith(name + ":")]
    assert len(found) == 1, (name, report.problems)
    return found[0]


# ---- scan ------------------------------------------------------------------------

def test_a_clean_tree_scans_with_sorted_classes_and_no_problems(image_tree):
    report = scan.scan_folder(image_tree)
    assert report.class_names == ("blue", "green", "red")
    assert report.counts == {"blue": 12, "green": 12, "red": 12}
    assert report.problems == () and scan.blocking_problems(report) == ()
    for path, label in report.items:
        assert Path(path).parent.name == report.class_names[label]
    assert scan.scan_folder(image_tree) == report  # deterministic


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("cat/empty.jpg", "empty (0 bytes)"),
        ("cat/cut.jpg", "truncated"),
        ("cat/notes.jpg", "not an image"),
        ("cat/scan.tiff", "TIFF images are not supported"),
        ("nothing/broken.png", "not an image"),
    ],
)
def test_each_bad_file_is_left_out_with_a_reason(messy_tree, name, words):
    report = scan.scan_folder(messy_tree)
    assert words in reason_for(report, name)
    assert str(messy_tree / name) not in {p for p, _ in report.items}
    assert all(p.field == "data.folder" for p in report.problems)


def test_a_jpeg_cut_off_in_its_image_data_is_caught(image_tree):
    buf = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(buf, "JPEG")
    data = buf.getvalue()
    (image_tree / "red" / "photo.jpg").write_bytes(data[: int(len(data) * 0.9)])
    report = scan.scan_folder(image_tree)
    assert "truncated" in reason_for(report, "red/photo.jpg")
    assert report.counts["red"] == 12


def test_the_messy_tree_keeps_exactly_the_usable_images(messy_tree):
    report = scan.scan_folder(messy_tree)
    assert report.class_names == ("cat", "чай ☕")
    assert report.counts == {"cat": 6, "чай ☕": 4}
    names = {Path(p).relative_to(messy_tree).as_posix() for p, _ in report.items}
    assert "cat/actually_png.jpg" in names  # content decides, not the name
    assert "cat/more/deeper/inner.png" in names  # nested folders belong to their class
    assert "чай ☕/картинка 猫.png" in names
    text = " ".join(p.message for p in report.problems)
    assert ".hidden" not in text and ".DS_Store" not in text and ".git" not in text
    assert report.ignored_files == 3 and "3 file(s) that are not images" in text
    assert "class 'nothing' has no usable images" in text
    assert "1 image(s) directly in" in text  # stray.png at the top
    assert "README" not in text
    assert report.blocking == ()
    assert len(report.warnings) == len(report.problems) == 8


def test_the_summary_names_classes_counts_and_problems(messy_tree):
    text = scan.scan_folder(messy_tree).summary()
    assert "10 usable images in 2 classes" in text
    assert "чай ☕" in text and "cut.jpg" in text and "Left out (8)" in text
    assert "Cannot train" not in text


def test_one_usable_class_blocks_training(image_tree):
    shutil.rmtree(image_tree / "green")
    for f in (image_tree / "blue").iterdir():
        f.write_text("not an image")
    report = scan.scan_folder(image_tree)
    assert report.class_names == ("red",)
    blockers = scan.blocking_problems(report)
    assert len(blockers) == 1 and "at least two classes" in blockers[0].message
    assert "Cannot train" in report.summary()


@pytest.mark.parametrize("make", ["missing", "flat"])
def test_a_folder_that_is_missing_or_has_no_class_folders_blocks(tmp_path, make):
    folder = tmp_path / "data"
    if make == "flat":
        folder.mkdir()
        Image.new("RGB", (8, 8)).save(folder / "a.png")
    report = scan.scan_folder(folder)
    assert report.items == () and len(report.blocking) == 1


def test_scan_reports_progress(image_tree):
    calls = []
    scan.scan_folder(image_tree, progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (36, 36)


# ---- image modes -------------------------------------------------------------------

def _gradient(size=32):
    return np.tile(np.linspace(0, 1, size), (size, 1))


def write_mode(path: Path, mode: str) -> None:
    g = _gradient()
    if mode == "I;16":
        Image.fromarray((g * 65535).astype(np.uint16)).save(path.with_suffix(".png"))
    elif mode == "CMYK":
        Image.new("CMYK", (32, 32), (255, 0, 0, 0)).save(path.with_suffix(".jpg"))  # cyan
    elif mode == "P":
        img = Image.fromarray((g * 255).astype(np.uint8)).convert("RGB").quantize(16)
        img.save(path.with_suffix(".png"), transparency=0)
    elif mode == "GIF":
        frames = [Image.new("P", (32, 32), i) for i in (3, 9)]
        frames[0].save(path.with_suffix(".gif"), save_all=True, append_images=frames[1:])
    elif mode == "BMP":
        Image.new("RGB", (32, 32), (10, 20, 30)).save(path.with_suffix(".bmp"))
    else:
        base = Image.fromarray((g * 255).astype(np.uint8))
        base.convert(mode).save(path.with_suffix(".png"))


MODES = ["L", "LA", "RGBA", "1", "P", "I;16", "CMYK", "GIF", "BMP"]


@pytest.mark.parametrize("mode", MODES)
def test_every_image_mode_loads_as_rgb_uint8(tmp_path, mode):
    write_mode(tmp_path / "img", mode)
    (path,) = tmp_path.iterdir()
    assert decode.check_image(path) is None
    image = decode.load_image(path, 24)
    assert image.shape == (24, 24, 3) and image.dtype == np.uint8


def test_16_bit_greys_are_scaled_not_clipped(tmp_path):
    write_mode(tmp_path / "img", "I;16")
    image = decode.load_image(tmp_path / "img.png").astype(float)
    assert image.min() < 5 and image.max() > 250
    assert 100 < image.mean() < 155  # Pillow's plain convert() gives ~254 here


def test_a_cmyk_jpeg_comes_out_in_the_right_colours(tmp_path):
    write_mode(tmp_path / "img", "CMYK")
    r, g, b = decode.load_image(tmp_path / "img.jpg").reshape(-1, 3).mean(0)
    assert r < 40 and g > 215 and b > 215  # cyan


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees to view
    Image.new("RGB", (40, 20), (200, 0, 0)).save(tmp_path / "phone.jpg", exif=exif)
    assert decode.load_image(tmp_path / "phone.jpg").shape == (40, 20, 3)


def test_mixed_modes_stream_through_the_pipeline_as_rgb_floats(tmp_path):
    for k, cls in enumerate(("a", "b")):
        (tmp_path / cls).mkdir()
        for mode in MODES[k::2]:
            write_mode(tmp_path / cls / mode.replace(";", "_"), mode)
    report = scan.scan_folder(tmp_path)
    assert report.problems == () and len(report.items) == len(MODES)
    x, y = batches(pipeline.make_dataset(report.items, 2, 16, 4, training=False))
    assert x.shape == (len(MODES), 16, 16, 3) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 255 and x.max() > 1  # 0..255, not 0..1


# ---- split -----------------------------------------------------------------------

def _items(sizes):
    return tuple((f"c{label}/{i}.png", label) for label, n in enumerate(sizes) for i in range(n))


def test_split_is_stratified_and_deterministic():
    items = _items([40, 10, 2, 1])
    train, val = splits.split_items(items, 0.25, seed=7)
    assert Counter(label for _, label in val) == {0: 10, 1: 2, 2: 1}  # the single image trains
    assert sorted(train + val) == sorted(items) and not set(train) & set(val)
    assert splits.split_items(items, 0.25, seed=7) == (train, val)
    assert splits.split_items(items, 0.25, seed=8)[1] != val


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=6), st.floats(0.05, 0.95), st.integers(0, 99))
def test_split_keeps_every_class_in_both_parts(sizes, fraction, seed):
    train, val = splits.split_items(_items(sizes), fraction, seed)
    t, v = Counter(lb for _, lb in train), Counter(lb for _, lb in val)
    for label, n in enumerate(sizes):
        assert t[label] + v[label] == n
        if n >= 2:
            assert t[label] >= 1 and v[label] >= 1
            assert abs(v[label] - n * fraction) <= 1
        else:
            assert v[label] == 0


# ---- make_dataset ----------------------------------------------------------------

def test_batches_have_the_promised_shapes_values_and_one_hot_labels(image_tree):
    report = scan.scan_folder(image_tree)
    ds = pipeline.make_dataset(report.items, 3, 20, 8, training=False)
    first_x, first_y = next(iter(ds))
    assert first_x.shape == (8, 20, 20, 3) and first_x.dtype.name == "float32"
    assert first_y.shape == (8, 3) and first_y.dtype.name == "float32"
    x, y = batches(ds)
    assert len(x) == 36 and 0 <= x.min() and x.max() <= 255 and x.max() > 100
    assert np.array_equal(y.sum(1), np.ones(36))
    assert y.argmax(1).tolist() == [label for _, label in report.items]  # order kept
    # images match their class: red ones are red, blue ones blue
    mean = x.mean((1, 2))
    red, blue = report.class_names.index("red"), report.class_names.index("blue")
    assert (mean[y.argmax(1) == red, 0] > mean[y.argmax(1) == red, 2]).all()
    assert (mean[y.argmax(1) == blue, 2] > mean[y.argmax(1) == blue, 0]).all()


def test_training_data_is_reshuffled_each_epoch_and_repeatable_by_seed(image_tree):
    items = scan.scan_folder(image_tree).items

    def labels(ds):
        return batches(ds)[1].argmax(1).tolist()

    ds = pipeline.make_dataset(items, 3, 16, 8, training=True, seed=3)
    first, second = labels(ds), labels(ds)
    assert first != second and sorted(first) == sorted(second)
    assert labels(pipeline.make_dataset(items, 3, 16, 8, training=True, seed=3)) == first
    assert labels(pipeline.make_dataset(items, 3, 16, 8, training=False)) == [lb for _, lb in items]


def test_augmentation_changes_training_images_only(image_tree):
    items = scan.scan_folder(image_tree).items
    aug = AugmentConfig(flip=True, rotation=0.1, zoom=0.1, contrast=0.3)
    plain, _ = batches(pipeline.make_dataset(items, 3, 16, 8, training=False))
    not_training, _ = batches(pipeline.make_dataset(items, 3, 16, 8, training=False, augment=aug))
    ds = pipeline.make_dataset(items, 3, 16, 8, training=True, shuffle=False, augment=aug, seed=1)
    epoch1, _ = batches(ds)
    epoch2, _ = batches(ds)
    assert np.array_equal(plain, not_training)
    assert not np.allclose(epoch1, plain) and not np.allclose(epoch1, epoch2)
    assert 0 <= epoch1.min() and epoch1.max() <= 255
    again, _ = batches(pipeline.make_dataset(items, 3, 16, 8, training=True, shuffle=False,
                                            augment=aug, seed=1))
    assert np.allclose(again, epoch1)  # seeded


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_a_file_that_breaks_after_the_scan_is_skipped_and_counted(image_tree, damage):
    items = scan.scan_folder(image_tree).items
    victim = Path(items[5][0])
    if damage == "delete":
        victim.unlink()
    else:
        victim.write_bytes(b"garbage")
    counter = pipeline.SkipCounter()
    ds = pipeline.make_dataset(items, 3, 16, 8, training=True, seed=0, skip_counter=counter)
    for _ in range(2):
        x, _ = batches(ds)
        assert len(x) == 35
    assert counter.count == 1 and counter.paths == [str(victim)]
    assert counter.reasons[str(victim)]


def test_cache_keeps_decoded_images_after_the_first_pass(image_tree):
    items = scan.scan_folder(image_tree).items
    ds = pipeline.make_dataset(items, 3, 16, 8, training=False, cache=True)
    first, _ = batches(ds)
    shutil.rmtree(image_tree / "red")
    second, _ = batches(ds)
    assert np.array_equal(first, second)
    uncached, _ = batches(pipeline.make_dataset(items, 3, 16, 8, training=False))
    assert len(uncached) == 24


# ---- prepare_data ----------------------------------------------------------------

def test_prepare_data_splits_one_folder(image_tree):
    data = DataConfig(folder=str(image_tree), validation_split=0.25, image_size=16)
    prepared = pipeline.prepare_data(data, batch_size=8, seed=1)
    assert prepared.problems == ()
    assert (prepared.train_count, prepared.val_count, prepared.steps_per_epoch) == (27, 9, 4)
    assert len(batches(prepared.train)[0]) == 27
    assert Counter(batches(prepared.val)[1].argmax(1).tolist()) == {0: 3, 1: 3, 2: 3}


def test_prepare_data_uses_a_validation_folder_with_labels_by_class_name(make_image_tree):
    train = make_image_tree("train", classes=("red", "green", "blue"), per_class=4)
    val = make_image_tree("val", classes=("blue", "red", "green"), per_class=2, seed=5)
    data = DataConfig(folder=str(train), validation_folder=str(val), image_size=16)
    prepared = pipeline.prepare_data(data, batch_size=4, seed=0)
    assert prepared.problems == () and (prepared.train_count, prepared.val_count) == (12, 6)
    x, y = batches(prepared.val)
    red = prepared.class_names.index("red")
    reds = x[y.argmax(1) == red].mean((1, 2))
    assert len(reds) == 2 and (reds[:, 0] > reds[:, 2]).all()


def test_a_validation_folder_with_other_classes_blocks(make_image_tree):
    train = make_image_tree("train", classes=("red", "green"), per_class=4)
    val = make_image_tree("val", classes=("red", "blue"), per_class=2)
    data = DataConfig(folder=str(train), validation_folder=str(val), image_size=16)
    prepared = pipeline.prepare_data(data, batch_size=4, seed=0)
    (problem,) = prepared.problems
    assert problem.field == "data.validation_folder"
    assert "green" in problem.message and "blue" in problem.message
    assert prepared.train is None


def test_prepare_data_blocks_on_one_class_and_keeps_file_problems_as_warnings(messy_tree):
    shutil.rmtree(messy_tree / "чай ☕")
    prepared = pipeline.prepare_data(DataConfig(folder=str(messy_tree)), batch_size=4, seed=0)
    assert len(prepared.problems) == 1 and "two classes" in prepared.problems[0].message
    assert any("cut.jpg" in p.message for p in prepared.warnings)
    assert prepared.train is None and prepared.val is None


# ---- demo dataset ----------------------------------------------------------------

def test_the_demo_dataset_scans_clean():
    report = scan.scan_folder(DEMO)
    assert report.class_names == ("bag", "dress", "sneaker", "trouser")
    assert set(report.counts.values()) == {60}
    assert report.problems == ()
    size = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert size < 1_500_000
    assert (DEMO / "README.md").read_text().count("MIT") >= 1


def test_a_huge_png_is_checked_without_decoding_and_a_truncated_one_is_still_found(tmp_path, monkeypatch):
    image = np.zeros((300, 300, 3), np.uint8)
    image[::3] = 200
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    good, cut = tmp_path / "good.png", tmp_path / "cut.png"
    good.write_bytes(buffer.getvalue())
    cut.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    from PIL import ImageFile

    assert decode.check_image(cut) is not None
    monkeypatch.setattr(decode, "VERIFY_ONLY_PIXELS", 300 * 300 - 1)  # these count as huge

    def no_decoding(self):
        raise AssertionError("the pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert decode.check_image(good) is None
    assert "truncated" in decode.check_image(cut)


def test_a_broken_symlink_is_reported_as_one(tmp_path):
    from workbench.core.data.decode import check_image

    link = tmp_path / "cat.png"
    link.symlink_to(tmp_path / "gone.png")
    problem = check_image(link)
    assert problem is not None and "broken link" in problem and "gone.png" in problem


def test_predict_refuses_the_formats_training_refuses(tmp_path):
    from PIL import Image

    from workbench.core.analysis.predict import read_image

    tiff = tmp_path / "scan.tiff"
    Image.new("RGB", (8, 8), "red").save(tiff)
    image, problem = read_image(str(tiff), 8)
    assert image is None and "TIFF images are not supported" in problem
    png = tmp_path / "ok.png"
    Image.new("RGB", (8, 8), "red").save(png)
    image, problem = read_image(str(png), 8)
    assert image is not None and problem == ""
