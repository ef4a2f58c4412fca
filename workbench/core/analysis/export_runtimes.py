"""The exports that need their own converter and runtime: ONNX, and full-int8 TFLite.

ONNX goes through Keras 3's own `model.export(path, format="onnx")`, which on the
TensorFlow backend traces the model's serving function and hands it to tf2onnx (with
Keras's numpy-2 patches applied); the file is then run in onnxruntime, not in TensorFlow.
Full-int8 TFLite quantises weights and activations from representative training images;
inputs and outputs are int8 or uint8 as asked, and the interpreter's own quantisation
parameters turn pixels in and probabilities out.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

ONNX_PACKAGES = ("onnx", "onnxruntime", "tf2onnx")
INT8_DTYPES = ("int8", "uint8")


class ExportUnavailable(Exception):
    """The export cannot be made here or for this model; the message says why, for a person."""


def missing_onnx_packages() -> list[str]:
    """The packages the ONNX export needs that are not installed (empty when it can run)."""
    import importlib.util

    return [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]


# ---- ONNX -------------------------------------------------------------------------------------

def save_onnx(model: Any, target: Path) -> None:
    """Keras's ONNX export into a temporary file beside the target, then swapped in."""
    missing = missing_onnx_packages()
    if missing:
        raise ExportUnavailable(
            f"the ONNX export needs {', '.join(missing)}: install them with "
            "pip install 'workbench[onnx]' (or pip install onnx onnxruntime tf2onnx)")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    tmp = target.with_name(f".{target.name}.partial")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # tf2onnx probes np.object
            warnings.simplefilter("ignore", DeprecationWarning)
            model.export(str(tmp), format="onnx", verbose=False)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def run_onnx(path: Path, images: np.ndarray) -> np.ndarray:
    """Probabilities from onnxruntime on the CPU (the batch dimension of the export is free)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = []
    for start in range(0, len(images), 32):
        out.append(session.run(None, {name: images[start:start + 32].astype(np.float32)})[0])
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


# ---- TFLite -----------------------------------------------------------------------------------

def tflite_interpreter(path: Path) -> Any:
    """LiteRT's interpreter when installed; TensorFlow's own (deprecated, still shipped) otherwise."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated.*")
        return Interpreter(model_path=str(path))


def run_tflite(path: Path, images: np.ndarray) -> np.ndarray:
    """Probabilities, one image at a time (the converted model's batch size is 1).

    A quantised input gets the pixels through its scale and zero point, and a quantised
    output is turned back into probabilities the same way, as an app on a phone would.
    """
    interpreter = tflite_interpreter(path)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    in_scale, in_zero = inp.get("quantization", (0.0, 0))
    out_scale, out_zero = out.get("quantization", (0.0, 0))
    results = []
    for image in images:
        x = image[None]
        if np.issubdtype(inp["dtype"], np.integer) and in_scale:
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / in_scale + in_zero), info.min, info.max)
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        y = interpreter.get_tensor(out["index"])[0].copy()
        if np.issubdtype(out["dtype"], np.integer) and out_scale:
            y = (y.astype(np.float32) - out_zero) * out_scale
        results.append(y.astype(np.float32))
    return np.stack(results)


def convert_tflite(model: Any, *, dynamic: bool = False, int8_io: str = "",
                   representative: Callable[[], Iterator[list[np.ndarray]]] | None = None,
                   keep_float: list[bytes] | None = None) -> tuple[bytes, bool]:
    """TFLite bytes from a temporary SavedModel; TFLite builtins first, TF ops (Flex) only if needed.

    Returns (model bytes, whether it needs SELECT_TF_OPS). With `int8_io` ("int8" or
    "uint8") the model is fully quantised from `representative` (TFLite int8 builtins only:
    no float fallback, no Flex); an op that cannot be quantised raises ExportUnavailable.
    `keep_float`, when given, receives the float conversion of the same SavedModel (for its size).
    Workbench's own layers convert to builtins: Preprocess is arithmetic, DropBlock2D is the
    identity in inference.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory(prefix="workbench-export-") as tmp:
        saved = os.path.join(tmp, "saved_model")
        model.export(saved, format="tf_saved_model", verbose=False)

        def convert(select_ops: bool) -> bytes:
            converter = tf.lite.TFLiteConverter.from_saved_model(saved)
            if dynamic:
                converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no data given: dynamic-range weights
            if select_ops:
                converter.target_spec.supported_ops = [
                    tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS,
                ]
            return converter.convert()

        if int8_io:
            if keep_float is not None:
                keep_float.append(convert(select_ops=False))
            return _convert_int8(saved, int8_io, representative), False
        try:
            return convert(select_ops=False), False
        except Exception as exc:  # noqa: BLE001 - ConverterError moves between TF versions
            if "not supported" not in str(exc) and "Select TF" not in str(exc) and "Flex" not in str(exc):
                raise
        return convert(select_ops=True), True


def _convert_int8(saved: str, io: str, representative: Any) -> bytes:
    import tensorflow as tf

    if io not in INT8_DTYPES:
        raise ValueError(f"int8 inputs and outputs are int8 or uint8, not {io!r}")
    if representative is None:
        raise ExportUnavailable("full-int8 quantisation needs representative images")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8 if io == "int8" else tf.uint8
    converter.inference_output_type = converter.inference_input_type
    try:
        data = converter.convert()
    except Exception as exc:  # noqa: BLE001 - ConverterError and friends: say what blocked it
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        ops = [line for line in lines if "quantiz" in line.lower() or "not supported" in line.lower()
               or "int8" in line.lower()]
        detail = (ops or lines or [type(exc).__name__])[0][:300]
        raise ExportUnavailable(
            "this model cannot be fully quantised to int8 (every operation must have an int8 "
            f"kernel in TFLite): {detail}. The dynamic-range TFLite export (tflite-dynamic) "
            "keeps float activations and works for it") from exc
    floating = float_operations(data)
    if floating:  # the converter leaves an op without an int8 kernel in float, silently
        raise ExportUnavailable(
            "this model cannot be fully quantised to int8: TFLite has no int8 kernel for "
            f"{', '.join(floating)}, so it would stay in float. The dynamic-range TFLite export "
            "(tflite-dynamic) keeps float activations and works for it")
    return data


def float_operations(data: bytes) -> list[str]:
    """The operations of a TFLite model that compute in float (conversions in and out aside)."""
    with tempfile.TemporaryDirectory(prefix="workbench-int8-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(data)
        interpreter = tflite_interpreter(path)
        tensors = interpreter.get_tensor_details()
        dtypes = {t["index"]: np.dtype(t["dtype"]) for t in tensors}
        names = set()
        for op in interpreter._get_ops_details():  # noqa: SLF001 - the only listing of ops it has
            if op["op_name"] in ("QUANTIZE", "DEQUANTIZE", "DELEGATE"):
                continue
            used = [i for i in (*op["inputs"], *op["outputs"]) if i >= 0]
            if any(dtypes.get(i) == np.float32 for i in used):
                names.add(op["op_name"])
        return sorted(names)


def representative_images(paths: list[str], image_size: int, count: int = 100,
                          seed: int = 0) -> Callable[[], Iterator[list[np.ndarray]]]:
    """A representative dataset for the converter: up to `count` training images, one at a time."""
    from workbench.core.analysis.predict import read_images

    rng = np.random.default_rng(seed)
    chosen = [paths[i] for i in rng.permutation(len(paths))[:count]]
    images, _ = read_images(chosen, image_size)
    if not len(images):
        raise ExportUnavailable("none of the run's training images could be read, and full-int8 "
                                "quantisation needs them as representative data")

    def generate() -> Iterator[list[np.ndarray]]:
        for image in images:
            yield [image[None].astype(np.float32)]

    return generate
