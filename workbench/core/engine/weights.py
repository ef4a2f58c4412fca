"""Where a backbone's weights come from: ImageNet, a local file, or none.

- "imagenet": keras.applications downloads the file once into its cache
  (~/.keras/models). Offline, the download fails; we raise WeightsUnavailable
  naming the exact file and the folder where a person can put it by hand.
- "file": a `.weights.h5` file written by `save_backbone_weights` (or by
  Keras's `save_weights` on the same architecture), a `.keras` model whose
  backbone matches (weights copied by layer name), or a Keras 2 style `.h5`
  weights file (by layer name, e.g. a keras.applications download). A file that
  does not fit raises WeightsMismatch naming the first layer that differs:
  Keras itself would sometimes only warn and keep random weights.
- "none": the same architecture with random weights ("re-initialised").

Nothing here imports TensorFlow at module level; `imagenet_weights_cached`
never imports it, so the UI can show whether ImageNet weights are at hand.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from workbench.core.config.backbone_catalogue import BackboneSpec, get_backbone
from workbench.core.config.derived import effective_transfer
from workbench.core.config.run import BackboneConfig
from workbench.core.config.weights_files import (
    WeightsUnavailable,
    imagenet_file_name,
    imagenet_weights_cached,
    keras_cache_dir,
)
from workbench.core.engine.backbones import refresh_statistics
from workbench.core.runs.saved_backbones import SAVED_BACKBONES_DIR, write_backbone_info

MANIFEST_ATTR = "workbench_layers"  # h5 attribute: [[layer name, [shape, ...]], ...]


class WeightsMismatch(ValueError):
    """A weights file does not fit the chosen backbone; the message names what differs."""


def reinitialise(layers: Any) -> int:
    """Give `layers` fresh random weights by re-running each weight's initializer.

    Keras layers keep their initializers as attributes (`kernel_initializer`,
    `depthwise_initializer`, `gamma_initializer`, `moving_variance_initializer`...).
    Returns how many variables were re-initialised.
    """
    import keras

    count = 0
    for layer in layers:
        if isinstance(layer, keras.layers.Normalization):
            continue  # fixed input statistics (EfficientNet's rescaling), not learned features
        for variable in layer.weights:
            name = variable.path.split("/")[-1]
            init = None
            for attr in (f"{name}_initializer", f"{name.replace('_kernel', '')}_initializer"):
                init = getattr(layer, attr, None)
                if init is not None:
                    break
            if init is None:
                init = "glorot_uniform" if len(variable.shape) >= 2 else (
                    "ones" if name in ("gamma", "moving_variance") else "zeros")
            init = keras.initializers.get(init)
            variable.assign(init(tuple(variable.shape), dtype=variable.dtype))
            count += 1
    return count


def resolve_weights(config: BackboneConfig) -> str | None:
    """What the keras.applications constructor gets: "imagenet" or None.

    A weights file is not handed to Keras: `load_backbone` builds the backbone
    and then loads the file itself, so that a misfit is reported by layer.
    Raises WeightsUnavailable for a missing file and ValueError for an unknown source.
    """
    if config.weights == "imagenet":
        return "imagenet"
    if effective_transfer(config) == "zero":
        return None
    if config.weights == "file":
        path = Path(config.weights_file)
        if not config.weights_file.strip() or not path.is_file():
            raise WeightsUnavailable(f"weights file not found: {config.weights_file or '(none chosen)'}")
        return None
    raise ValueError(f"unknown weights source {config.weights!r}; one of: imagenet, file, none")


def load_backbone(config: BackboneConfig, image_size: int) -> Any:
    """The backbone as a Keras model named "backbone", with the chosen weights.

    Raises WeightsUnavailable (ImageNet offline and not cached, file missing)
    or WeightsMismatch (file does not fit).
    """
    from workbench.core.engine.backbones import build_backbone, check_build_args

    spec = get_backbone(config.name)
    check_build_args(spec, image_size, config.width)
    source = resolve_weights(config)
    if source == "imagenet":
        imagenet_file_name(spec, image_size, config.width)  # raises when there are none
        try:
            model = build_backbone(spec.name, image_size, config.width, "imagenet")
        except Exception as exc:
            if imagenet_weights_cached(spec, image_size, config.width) is not None:
                raise  # the file is here, so the download was not the problem
            raise WeightsUnavailable(_offline_message(spec, image_size, config.width, exc)) from exc
    else:
        model = build_backbone(spec.name, image_size, config.width, None)
        if config.weights == "file" and effective_transfer(config) != "zero":
            load_weights_file(model, config.weights_file)
    model.name = "backbone"
    return model


def _offline_message(spec: BackboneSpec, image_size: int, width: float, exc: BaseException) -> str:
    name = imagenet_file_name(spec, image_size, width)
    reason = " ".join(str(exc).split())[:400] or type(exc).__name__
    return (
        f"Could not download the ImageNet weights for {spec.name} ({reason}). "
        f"Without internet access, put the file '{name}' into {keras_cache_dir()} "
        f"(from a machine where Keras has downloaded it, in its ~/.keras/models folder), "
        f"or choose 'none' or a weights file."
    )


def load_weights_file(backbone: Any, path: str | os.PathLike) -> None:
    """Load a weights file into `backbone`, or raise WeightsMismatch saying what differs."""
    path = Path(path)
    if not path.is_file():
        raise WeightsUnavailable(f"weights file not found: {path}")
    name = path.name.lower()
    if name.endswith(".keras"):
        _copy_by_name(backbone, _backbone_weights_from_model_file(path), path)
    elif name.endswith(".weights.h5"):
        _load_native(backbone, path)
    elif name.endswith((".h5", ".hdf5")):
        _copy_by_name(backbone, _weights_from_legacy_h5(path), path)
    else:
        raise WeightsMismatch(f"{path.name}: not a weights file Workbench reads (.weights.h5, .keras or .h5)")


def save_backbone_weights(model: Any, path: str | os.PathLike) -> Path:
    """Write the backbone's weights (of a classifier, or of a backbone itself) to a `.weights.h5` file.

    Keras's own format, so `backbone.load_weights(path)` reads it too, plus a
    list of layer names and shapes that lets `load_weights_file` say exactly
    where a file does not fit. Written to a temporary name, then moved into place.
    """
    import h5py

    backbone = _find_backbone(model)
    target = Path(path)
    if not target.name.endswith(".weights.h5"):
        raise ValueError(f"a weights file name must end in .weights.h5 (got {target.name})")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name[: -len('.weights.h5')]}.partial.weights.h5")
    try:
        backbone.save_weights(str(tmp))
        with h5py.File(tmp, "a") as f:
            f.attrs[MANIFEST_ATTR] = json.dumps(_manifest(backbone))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _find_backbone(model: Any) -> Any:
    """The nested model named "backbone" when there is one, else the model itself."""
    for layer in getattr(model, "layers", []):
        if layer.name == "backbone" and hasattr(layer, "layers"):
            return layer
    return model


def _weighted_layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if layer.weights]


def _manifest(backbone: Any) -> list[list[Any]]:
    return [[layer.name, [list(w.shape) for w in layer.weights]] for layer in _weighted_layers(backbone)]


def _base_name(name: str) -> str:
    """A layer name without the counter Keras appends to automatic names ("normalization_3")."""
    return re.sub(r"_\d+$", "", name)


def _describe(shapes: list[Any]) -> str:
    return ", ".join(str(tuple(int(d) for d in s)) for s in shapes) or "no weights"


def _load_native(backbone: Any, path: Path) -> None:
    """A Keras 3 `.weights.h5`: check our manifest if present, then let Keras load it."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            manifest = f.attrs.get(MANIFEST_ATTR)
    except OSError as exc:
        raise WeightsMismatch(f"{path.name}: not a readable HDF5 weights file ({exc})") from None
    if manifest is not None:
        _check_manifest(backbone, json.loads(manifest), path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            backbone.load_weights(str(path))
        except Exception as exc:  # Keras raises ValueError, KeyError, ... depending on what differs
            first = " ".join(str(exc).split("Target variable")[0].split()) or type(exc).__name__
            raise WeightsMismatch(f"{path.name} does not fit this backbone: {first[:500]}") from None
    # Keras only warns when parts of the file have no counterpart, and keeps random weights there.
    skipped = [w for w in caught if "freshly-initialized" in str(w.message) or "not loaded" in str(w.message)]
    if skipped:
        raise WeightsMismatch(
            f"{path.name} does not fit this backbone: {str(skipped[0].message).splitlines()[0][:300]}"
        )


def _check_manifest(backbone: Any, manifest: list[list[Any]], path: Path) -> None:
    ours = _manifest(backbone)
    # Not strict: the first differing layer says more than a different count.
    for (name, shapes), (file_name, file_shapes) in zip(ours, manifest, strict=False):
        if _base_name(name) != _base_name(file_name) or [list(s) for s in shapes] != [list(s) for s in file_shapes]:
            raise WeightsMismatch(
                f"{path.name} does not fit this backbone: layer '{name}' has weights "
                f"{_describe(shapes)} here, but the file has layer '{file_name}' with "
                f"{_describe(file_shapes)}. Was it saved from another backbone or width?"
            )
    if len(ours) != len(manifest):
        raise WeightsMismatch(
            f"{path.name} does not fit this backbone: it holds {len(manifest)} layers with weights, "
            f"this backbone has {len(ours)}. Was it saved from another backbone?"
        )


def _weights_from_legacy_h5(path: Path) -> dict[str, list[Any]]:
    """Layer name -> arrays from a Keras 2 style weights file (the keras.applications downloads)."""
    import h5py
    import numpy as np

    def text(v: Any) -> str:
        return v.decode("utf-8") if isinstance(v, bytes) else str(v)

    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise WeightsMismatch(f"{path.name}: not a Keras weights file (no layer names inside)")
            result = {}
            for layer_name in map(text, root.attrs["layer_names"]):
                group = root[layer_name]
                names = [text(n) for n in group.attrs.get("weight_names", [])]
                if names:
                    result[layer_name] = [np.asarray(group[n]) for n in names]
            return result
    except OSError as exc:
        raise WeightsMismatch(f"{path.name}: not a readable HDF5 weights file ({exc})") from None


def _backbone_weights_from_model_file(path: Path) -> dict[str, list[Any]]:
    """Layer name -> arrays of the backbone inside a saved `.keras` model."""
    import keras

    import workbench.core.engine.layers  # noqa: F401  (registers Workbench's layers for loading)

    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:
        raise WeightsMismatch(f"{path.name}: cannot read this model file ({type(exc).__name__}: {exc})") from None
    source = _find_backbone(model)
    return {layer.name: layer.get_weights() for layer in _weighted_layers(source)}


def _copy_by_name(backbone: Any, source: dict[str, list[Any]], path: Path) -> None:
    """Give each layer of `backbone` the arrays stored under its name; all or nothing.

    Keras's automatic names differ between builds ("normalization" vs
    "normalization_2"), so a name not found exactly is matched without its
    counter when that is unambiguous.
    """
    unused = dict(source)
    plan = []
    for layer in _weighted_layers(backbone):
        key = layer.name if layer.name in unused else None
        if key is None:
            candidates = [n for n in unused if _base_name(n) == _base_name(layer.name)]
            key = candidates[0] if len(candidates) == 1 else None
        if key is None:
            raise WeightsMismatch(
                f"{path.name} does not fit this backbone: it has no weights for layer '{layer.name}'"
                + ("" if plan else " (no layer of this backbone is in the file: another backbone?)")
            )
        arrays = unused.pop(key)
        expected = [tuple(w.shape) for w in layer.weights]
        found = [tuple(a.shape) for a in arrays]
        if expected != found:
            raise WeightsMismatch(
                f"{path.name} does not fit this backbone: layer '{layer.name}' has weights "
                f"{_describe(expected)} here but {_describe(found)} in the file. "
                f"Was it saved from another backbone or width?"
            )
        plan.append((layer, arrays))
    if unused:
        extra = ", ".join(f"'{n}'" for n in list(unused)[:3])
        raise WeightsMismatch(
            f"{path.name} does not fit this backbone: the file has {len(unused)} layers with "
            f"weights that this backbone lacks ({extra}{', ...' if len(unused) > 3 else ''})"
        )
    for layer, arrays in plan:
        layer.set_weights(arrays)
    refresh_statistics(backbone)


def save_run_backbone(run_dir: str | os.PathLike, name: str, runs_dir: str | os.PathLike | None = None) -> Path:
    """Save the backbone of a run's model as `<runs dir>/weights/<name>.weights.h5`, to transfer from.

    Pick the file as the weights source (weights "file") of a new run on another dataset:
    the same backbone and width. Raises WeightsUnavailable when the run has no model.
    """
    from workbench.core.engine.saving import load_model
    from workbench.core.runs.store import MODEL_FILE, default_runs_dir

    run = Path(run_dir)
    if not (run / MODEL_FILE).is_file():
        raise WeightsUnavailable(f"run {run.name} has no model to take a backbone from")
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip()).strip("-.") or run.name
    root = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    path = save_backbone_weights(load_model(run / MODEL_FILE, compile=False),
                                 root / SAVED_BACKBONES_DIR / f"{clean}.weights.h5")
    write_backbone_info(run, path)
    return path
