"""The way to the first batch: the prepare steps a run reports, the scan its trials share, and the
route each file's header picks (no branching per image when all files take one)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from core_helpers import tiny_config
from PIL import Image

from workbench.core.base.events import BatchEnd, Message, RunFinished
from workbench.core.data import decode, pipeline
from workbench.core.train import run as training


def test_a_run_reports_its_prepare_steps_in_order_and_its_scan_is_reused_until_the_folder_changes(
        make_image_tree, tmp_path, monkeypatch):
    data = make_image_tree(per_class=6)
    scans = []
    real_scan = pipeline.scan_folder
    monkeypatch.setattr(pipeline, "scan_folder", lambda *a, **k: scans.append(a) or real_scan(*a, **k))
    config = tiny_config(data, epochs=1)

    events: list = []
    assert isinstance(training.run(config, events.append, runs_dir=tmp_path / "runs"), RunFinished)
    first_batch = next(i for i, e in enumerate(events) if isinstance(e, BatchEnd))
    steps = [(i, e.text) for i, e in enumerate(events) if isinstance(e, Message) and e.kind == "prepare"]
    assert [text.split()[0] for _, text in steps] == ["Scanning", "Building", "Starting"], steps
    assert all(i < first_batch for i, _ in steps)
    # BatchNorm learns here: its sample is taken at the first validation, after the first batch
    assert any("statistics are recomputed on" in e.text for e in events if isinstance(e, Message))
    assert len(scans) == 1

    assert pipeline.scan_once(data) is pipeline.scan_once(data)  # nothing changed: a sweep's next trial reuses it
    assert len(scans) == 1
    Image.new("RGB", (32, 32), (9, 9, 9)).save(data / sorted(p.name for p in data.iterdir())[0] / "new.png")
    report = pipeline.scan_once(data)
    assert len(scans) == 2 and any(p.endswith("new.png") for p, _ in report.items)


def test_header_routes_decode_as_the_graph_decides_itself(tmp_path):
    rng = np.random.default_rng(0)
    size = 32
    files = {  # name: (width, height): DCT scales 1, 2, 8 and antialiasing for a long side
        "small.jpg": (40, 30), "half.jpg": (70, 90), "eighth.jpg": (300, 260), "wide.jpg": (400, 40),
        "exact.png": (32, 32), "wide.png": (200, 33), "photo.gif": (50, 40), "photo.bmp": (45, 60),
    }
    paths = []
    for name, (w, h) in files.items():
        pixels = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        img = Image.fromarray(pixels)
        if name.endswith(".gif"):
            img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        path = tmp_path / name
        img.save(path, quality=90) if name.endswith(".jpg") else img.save(path)
        paths.append(str(path))
        assert decode.header_size(path) == (Image.open(path).format, h, w), name

    routes = decode.file_routes(paths, size)
    assert decode.PILLOW not in routes and decode.DYNAMIC not in routes
    assert len(set(routes)) >= 5  # JPEG at three scales, with and without antialiasing, and the others
    for path, route in zip(paths, routes, strict=True):
        contents = tf.io.read_file(path)
        chosen = decode.decode_native(contents, size, route=route).numpy()
        in_graph = decode.decode_native(contents, size, route=decode.DYNAMIC).numpy()
        np.testing.assert_array_equal(chosen, in_graph, err_msg=path)
    (tmp_path / "not-an-image.jpg").write_text("text")
    assert decode.file_route(str(tmp_path / "not-an-image.jpg"), size, pillow=False) == decode.DYNAMIC

    # one route for all: the dataset holds no per-image switch; mixed: one switch; same pixels either way
    mixed = pipeline.make_dataset([(p, 0) for p in paths], 1, size, 4, training=False)
    jpegs = [(p, 0) for p in paths if p.endswith("small.jpg")] * 3
    uniform = pipeline.make_dataset(jpegs, 1, size, 4, training=False)
    assert len(set(decode.file_routes([p for p, _ in jpegs], size))) == 1
    got = np.concatenate([x.numpy() for x, _ in mixed])
    expected = np.stack([decode.decode_native(tf.io.read_file(p), size, "float32").numpy() for p in paths])
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(np.concatenate([x.numpy() for x, _ in uniform]), expected[:1].repeat(3, 0))


def test_the_cli_prints_the_prepare_steps_on_a_terminal_too():
    import io

    from workbench.cli.printers import ProgressPrinter

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    printer = ProgressPrinter(out)
    printer(Message("info", "Building MobileNetV2 with ImageNet weights", kind="prepare"))
    printer(Message("info", "a detail a terminal leaves out"))
    assert "Building MobileNetV2" in out.getvalue() and "a detail" not in out.getvalue()
