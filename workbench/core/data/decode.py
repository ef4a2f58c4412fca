"""One image file -> RGB pixels, the same way for the scan, training, evaluation and prediction.

Two decoders, one per kind of file, chosen once per file from its header (`pillow_reason`):

- native: JPEG, PNG, GIF and BMP files that tf.io decodes as Pillow would (8-bit RGB or grey,
  no EXIF rotation, no transparency, no palette BMP, intact ending) are read and decoded inside
  the tf.data graph (`decode_native`: tf.io decode, JPEG at Pillow's draft scale, then
  `tf.image.resize` bilinear, rounded to uint8): no Python per image.
- Pillow (`load_image`): everything else (CMYK JPEG, 16-bit PNG, palette with transparency,
  EXIF-rotated files, palette or compressed BMP, GIF frames smaller than the canvas): JPEG draft,
  then `Image.resize(BILINEAR, reducing_gap=3.0)`.

The scan records which files take the Pillow path (`ScanReport.pillow_paths`); prediction
asks `needs_pillow` (the same decision, from the header only); both then read through
`graph_decoder`, so a file gives the model the same array in training, evaluation and prediction.
A native file's DCT scale and antialiasing are read from its header too (`file_route`), so a
dataset whose files all take one route decodes without any branching per image.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
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
    return inspect_image(path)[0]


def inspect_image(path: str | os.PathLike) -> tuple[str | None, bool]:
    """(why this file cannot be used or None, whether it must be decoded with Pillow): the scan's check."""
    from PIL import Image, UnidentifiedImageError

    pillow = True
    try:
        if os.path.getsize(path) == 0:
            return "the file is empty (0 bytes)", pillow
        with Image.open(path) as img:
            kind = SUPPORTED_FORMATS.get(img.format or "")
            if kind is None:
                return f"{img.format} images are not supported (use JPEG, PNG, BMP or GIF)", pillow
            pillow = takes_pillow(img, path)  # from the header, before any pixel
            if kind == "JPEG":
                img.draft("RGB", (1, 1))  # smallest scale: still reads every byte, so truncation shows
            if img.format == "PNG" and img.width * img.height > VERIFY_ONLY_PIXELS:
                img.verify()  # every chunk's checksum, no pixels: a truncated file still shows
            else:
                img.load()  # a GIF loads its first frame
        return None, pillow
    except UnidentifiedImageError:
        return "not an image (its contents are not JPEG, PNG, BMP or GIF, whatever its name says)", pillow
    except Image.DecompressionBombError:
        return "the image is too large to load safely", pillow
    except PermissionError:
        return "cannot read the file (permission denied)", pillow
    except FileNotFoundError:
        if os.path.islink(path):
            return f"a broken link: it points to {os.readlink(path)}, which does not exist", pillow
        return "the file disappeared during the scan", pillow
    except OSError as exc:
        if "truncated" in str(exc).lower():
            return "the file is incomplete (truncated); it may have been cut off while copying", pillow
        return f"the file is damaged ({exc})", pillow
    except Exception as exc:  # Pillow raises many kinds on broken data
        return f"the file is damaged ({type(exc).__name__}: {exc})", pillow


# ---- which decoder a file takes ---------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def pillow_reason(img: Any, path: str | os.PathLike) -> str | None:
    """Why tf.io would not decode this opened (not yet loaded) file as Pillow does, or None.

    None: the native decoder takes it. Decided from the header and the file's bytes, never the
    pixels, so prediction asks the same question cheaply (`needs_pillow`). tf.io's differences,
    measured against Pillow 13: it drops palette transparency, keeps the high byte of 16-bit
    samples (Pillow's route scales them), reads palette BMP indices as grey, and ignores EXIF.
    """
    fmt = SUPPORTED_FORMATS.get(img.format or "")
    if fmt is None:
        return f"{img.format} images are decoded by Pillow"
    if len(img.tile) != 1:
        return "an image in several parts"
    tile = img.tile[0]
    rawmode = tile.args if isinstance(tile.args, str) else str(tile.args[0] if tile.args else "")
    if fmt == "JPEG":
        if img.mode not in ("RGB", "L"):
            return f"a {img.mode} JPEG"
        if img.getexif().get(0x0112, 1) != 1:  # JPEG: the EXIF block is read with the header
            return "turned by its EXIF orientation"
    elif fmt == "PNG":
        if img.mode not in ("RGB", "RGBA", "L", "P") or "16" in rawmode:
            return f"a {rawmode} PNG"
        if "transparency" in img.info or "exif" in img.info:
            return "a PNG with a transparent colour or EXIF data"
    elif fmt == "GIF":
        if img.mode not in ("P", "L") or "transparency" in img.info:
            return "a GIF with a transparent colour"
        if tuple(tile.extents or ()) != (0, 0, *img.size):
            return "a GIF whose first frame does not fill its canvas"
    elif fmt == "BMP" and (rawmode not in ("BGR", "BGRX") or img.info.get("compression", 0) != 0):
        return f"a {rawmode} BMP"
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return str(exc)
    if native_format(data) != fmt:
        return "its bytes do not end as a complete file would"  # trailing data, or damage Pillow tolerates
    return None


def native_format(data: bytes) -> str | None:
    """"JPEG", "PNG", "GIF" or "BMP" when the bytes begin and end as a whole file of it; else None.

    A PNG's chunks are checked against their CRCs (libpng refuses a bad one, Pillow does not).
    Cheap next to decoding; a file that fails it (trailing data, a bad CRC Pillow tolerates) takes
    the Pillow route.
    """
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG" if data.rstrip(b"\0").endswith(b"\xff\xd9") else None
    if data.startswith(_PNG_SIGNATURE):
        return "PNG" if png_intact(data) else None
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF" if data.endswith(b";") else None
    if data[:2] == b"BM" and len(data) >= 6:
        declared = int.from_bytes(data[2:6], "little")
        return "BMP" if 0 < declared <= len(data) else None
    return None


def png_intact(data: bytes) -> bool:
    """Every chunk whole with a matching CRC, through IEND."""
    import zlib

    view, pos = memoryview(data), len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(view[pos:pos + 4], "big")
        end = pos + 12 + length
        if end > len(data) or zlib.crc32(view[pos + 4:end - 4]) != int.from_bytes(view[end - 4:end], "big"):
            return False
        if view[pos + 4:pos + 8] == b"IEND":
            return True
        pos = end
    return False


def needs_pillow(path: str | os.PathLike) -> bool:
    """The scan's decision for one file (`pillow_reason`), from its header, without decoding it."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return takes_pillow(img, path)
    except Exception:  # noqa: BLE001 - unreadable: the Pillow route says why, as it always has
        return True


def takes_pillow(img: Any, path: str | os.PathLike) -> bool:
    """pillow_reason is not None; a header Pillow cannot fully parse (odd EXIF) goes to Pillow too."""
    try:
        return pillow_reason(img, path) is not None
    except Exception:  # noqa: BLE001
        return True


# ---- which decoder a file takes, and how: its route --------------------------------------------
#
# A route is decided once per file, from its header, when a dataset is built: Pillow, or tf.io with
# the JPEG DCT scale and the antialiasing already chosen. A dataset whose files all take one route
# (photos from one camera, a folder of PNGs) then has no branching per image in its graph: a
# tf.cond or tf.switch_case per image costs 0.03-0.06 ms of CPU each, 3-5 % of decoding a 500x375
# JPEG (docs/measured.md). DYNAMIC (a header that could not be read when the dataset was built)
# makes the same choices inside the graph.

PILLOW, DYNAMIC = 0, 1
_DCT_RATIOS = (1, 2, 4, 8)
# (JPEG?, DCT ratio, antialias) of each native route; its number is 2 + the index here.
_NATIVE = tuple((jpeg, ratio, antialias) for jpeg, ratio in [(False, 1)] + [(True, r) for r in _DCT_RATIOS]
                for antialias in (False, True))
ROUTES = (PILLOW, DYNAMIC, *range(2, 2 + len(_NATIVE)))


def dct_ratio(height: int, width: int, image_size: int) -> int:
    """The JPEG DCT scale Pillow's draft picks: the largest of 1/8, 1/4, 1/2 that keeps both sides >= S."""
    scale = min(height // image_size, width // image_size)
    return max((r for r in _DCT_RATIOS if scale >= r), default=1)


def native_route(fmt: str, height: int, width: int, image_size: int) -> int:
    """The route of a native file of this format and size (see decode_native)."""
    ratio = dct_ratio(height, width, image_size) if fmt == "JPEG" else 1
    # libjpeg rounds scaled sides up; a side that shrinks 3x or more is resized with antialiasing
    antialias = max(-(-height // ratio), -(-width // ratio)) >= 3 * image_size
    return 2 + _NATIVE.index((fmt == "JPEG", ratio, antialias))


def header_size(path: str | os.PathLike) -> tuple[str, int, int] | None:
    """(format, height, width) of a JPEG, PNG, GIF or BMP from its first bytes, or None.

    A few dozen microseconds in Python, a fifth of Pillow's Image.open; anything unexpected
    gives None, and the graph then decides itself (DYNAMIC).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
            if head.startswith(b"\xff\xd8\xff"):
                found = _jpeg_size(head)
                if found is None and len(head) == 65536:  # a big EXIF block or thumbnail first
                    found = _jpeg_size(head + f.read())
                return None if found is None else ("JPEG", *found)
    except OSError:
        return None
    if head.startswith(_PNG_SIGNATURE) and head[12:16] == b"IHDR":
        return "PNG", int.from_bytes(head[20:24], "big"), int.from_bytes(head[16:20], "big")
    if head[:6] in (b"GIF87a", b"GIF89a") and len(head) >= 10:
        return "GIF", int.from_bytes(head[8:10], "little"), int.from_bytes(head[6:8], "little")
    if head[:2] == b"BM" and len(head) >= 26:
        return "BMP", abs(int.from_bytes(head[22:26], "little", signed=True)), int.from_bytes(head[18:22], "little")
    return None


_SOF = frozenset((0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF))


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(height, width) from a JPEG's first frame header, walking the markers."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):
            pos += 2
            continue
        if marker in _SOF:
            if pos + 9 > len(data):
                return None
            return int.from_bytes(data[pos + 5:pos + 7], "big"), int.from_bytes(data[pos + 7:pos + 9], "big")
        if marker in (0xD9, 0xDA):  # end, or the scan before any frame header
            return None
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None


def file_route(path: str, image_size: int, pillow: bool | None = None) -> int:
    """This file's route at `image_size`; `pillow` is the scan's decision, asked of the header when None."""
    if pillow is None:
        pillow = needs_pillow(path)
    if pillow:
        return PILLOW
    found = header_size(path)
    return DYNAMIC if found is None else native_route(*found, image_size)


def file_routes(paths: Sequence[str], image_size: int, pillow_paths: Collection[str] | None = None) -> list[int]:
    """file_route for each path, over a few threads (header reads), in input order."""
    if not paths:
        return []

    def route(path: str) -> int:
        return file_route(path, image_size, None if pillow_paths is None else path in pillow_paths)

    workers = max(1, min(8, 2 * (os.cpu_count() or 1), len(paths) // 64))
    if workers == 1:
        return [route(p) for p in paths]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="route") as pool:
        return list(pool.map(route, paths, chunksize=64))


# ---- the native decoder and the one reader every path uses ------------------------------------

def decode_native(contents: Any, image_size: int, dtype: str = "uint8", route: int = DYNAMIC) -> Any:
    """tf.string (a JPEG, PNG, GIF or BMP file) -> [S, S, 3] of 0..255 integers, inside a TensorFlow graph.

    A JPEG is decoded at the DCT scale Pillow's draft picks (the largest of 1/8, 1/4, 1/2 that
    keeps both sides >= S); a GIF gives its first frame. Then `tf.image.resize` bilinear with
    half-pixel centres (as Pillow), without antialiasing, as a plain tf.io pipeline and Keras's
    image_dataset_from_directory do: antialiasing (scale_and_translate) costs 2.07 ms for a
    500x375 -> 224 resize against 0.44 ms (docs/measured.md), and under 3x every output pixel still
    draws on most source pixels. A side that shrinks 3x or more (after a JPEG's DCT scaling: only
    very wide or tall images) is resized with antialiasing. Rounded to whole levels, as `dtype`
    ("uint8", or "float32" holding the same values, which spares a streaming pipeline two casts);
    an image already S x S comes out as it was (a bilinear resize to its own size is exact).
    `route` (file_route) gives those choices from the header; DYNAMIC makes them here, per image.
    """
    import tensorflow as tf

    if route != DYNAMIC:
        jpeg, ratio, antialias = _NATIVE[route - 2]
        if jpeg:
            image = tf.io.decode_jpeg(contents, channels=3, ratio=ratio)
        else:
            image = tf.io.decode_image(contents, channels=3, expand_animations=False)
        return _resized(image, image_size, dtype, antialias)

    def jpeg() -> Any:
        shape = tf.io.extract_jpeg_shape(contents)
        scale = tf.minimum(shape[0] // image_size, shape[1] // image_size)
        index = tf.add_n([tf.cast(scale >= s, tf.int32) for s in _DCT_RATIOS[1:]])
        return tf.switch_case(index, [partial(tf.io.decode_jpeg, contents, channels=3, ratio=r) for r in _DCT_RATIOS])

    def other() -> Any:
        return tf.io.decode_image(contents, channels=3, expand_animations=False)

    image = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
    image.set_shape([None, None, 3])
    wide = tf.reduce_any(tf.shape(image)[:2] >= 3 * image_size)
    # partial, not lambda: AutoGraph cannot tell apart lambdas that share a line
    return tf.cond(wide, partial(_resized, image, image_size, dtype, True), partial(_resized, image, image_size, dtype, False))


def _resized(image: Any, image_size: int, dtype: str, antialias: bool) -> Any:
    """Bilinear with half-pixel centres, rounded to whole levels (a convex mix of 0..255 needs no clip)."""
    import tensorflow as tf

    image.set_shape([None, None, 3])
    pixels = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=antialias)
    pixels = tf.cast(tf.round(pixels), dtype)
    pixels.set_shape([image_size, image_size, 3])
    return pixels


def graph_decoder(
    image_size: int,
    on_error: Callable[[str, str], Any] | None = None,
    on_read: Callable[[], Any] | None = None,
    dtype: str = "uint8",
    routes: Sequence[int] = (PILLOW, DYNAMIC),
) -> Callable:
    """fn(path: tf.string, which) -> ([S, S, 3] `dtype`, ok: tf.bool), for Dataset.map.

    `which` indexes `routes` (file_route): a Python int builds that route alone (no branching
    per image), a tf.int32 switches between them per image. The one reader of training,
    evaluation and prediction. A native file is read and decoded by TensorFlow alone
    (`tf.io.read_file`, `decode_native`): no Python, no GIL. One that is gone or damaged raises
    inside the graph, so the caller follows the map with `ignore_errors()` and tells which files
    went missing (make_dataset counts them per pass, decode_files per call). A Pillow file costs
    one call to `load_image` (with `on_read`); one that cannot be read gives ok=False and
    `on_error(path, reason)`.
    """
    import tensorflow as tf

    blank = np.zeros((image_size, image_size, 3), np.uint8)

    def read_pixels(path: bytes) -> tuple[np.ndarray, bool]:
        name = os.fsdecode(path)
        try:
            return load_image(name, image_size), True
        except Exception as exc:  # deleted, damaged, permissions: skip, never crash
            if on_error is not None:
                on_error(name, str(exc) or type(exc).__name__)
            return blank, False
        finally:
            if on_read is not None:
                on_read()

    def by_route(path: Any, route: int) -> tuple[Any, Any]:
        if route == PILLOW:
            image, ok = tf.numpy_function(read_pixels, [path], [tf.uint8, tf.bool])
            return tf.cast(image, dtype), ok
        return decode_native(tf.io.read_file(path), image_size, dtype, route), tf.constant(True)

    def decode(path: Any, which: Any) -> tuple[Any, Any]:
        if isinstance(which, int):
            image, ok = by_route(path, routes[which])
        else:
            image, ok = tf.switch_case(which, [partial(by_route, path, r) for r in routes])
        image.set_shape([image_size, image_size, 3])
        ok.set_shape([])
        return image, ok

    return decode


def route_choices(routes: Sequence[int]) -> tuple[tuple[int, ...], np.ndarray | int]:
    """(the distinct routes, each file's index into them): a Python 0 when they are all one route."""
    present = tuple(sorted(set(routes))) or (DYNAMIC,)
    if len(present) == 1:
        return present, 0
    position = {route: i for i, route in enumerate(present)}
    return present, np.array([position[r] for r in routes], np.int32)


def decode_files(
    paths: Sequence[str], image_size: int, pillow: Sequence[bool] | None = None
) -> list[tuple[np.ndarray | None, str]]:
    """(uint8 [S, S, 3] image, "") or (None, why not) per path, through `graph_decoder` (as training reads)."""
    import tensorflow as tf

    if not paths:
        return []
    if pillow is None:
        routes = file_routes(paths, image_size)
    else:
        routes = [file_route(p, image_size, bool(flag)) for p, flag in zip(paths, pillow, strict=True)]
    present, which = route_choices(routes)
    problems: dict[str, str] = {}
    decode = graph_decoder(image_size, on_error=problems.setdefault, routes=present)

    names = tf.constant([os.fsencode(p) for p in paths], tf.string, shape=[len(paths)])
    if isinstance(which, int):
        ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), names))

        def indexed(index: Any, path: Any) -> tuple[Any, Any, Any]:
            return (index, *decode(path, which))
    else:
        ds = tf.data.Dataset.from_tensor_slices((np.arange(len(paths)), names, which))

        def indexed(index: Any, path: Any, choice: Any) -> tuple[Any, Any, Any]:  # type: ignore[misc]
            return (index, *decode(path, choice))

    ds = ds.map(indexed, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    results: list[tuple[np.ndarray | None, str]] = [(None, "")] * len(paths)
    for indices, images, oks in ds.batch(64).prefetch(1).as_numpy_iterator():
        for index, image, ok in zip(indices, images, oks, strict=True):
            if ok:
                results[int(index)] = (image, "")
    for index, (image, _) in enumerate(results):
        if image is None:
            path = paths[index]
            results[index] = (None, check_image(path) or problems.get(path) or "cannot read the image")
    return results
