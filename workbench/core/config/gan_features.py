"""Which network measures a GAN's images (FID), decided from the settings and the files present; no TensorFlow."""

from __future__ import annotations

from pathlib import Path

from workbench.core.config.gan import GanEvaluationConfig
from workbench.core.config.weights_files import keras_cache_dir

INCEPTION_TOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"


INCEPTION_NOTOP_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


BACKBONE_FEATURE_SIZE = 96


def inception_weights() -> tuple[Path | None, bool]:
    """(the cached InceptionV3 ImageNet file, whether it has the top), or (None, False)."""
    from workbench.core.config.weights_files import keras_cache_dir

    cache = keras_cache_dir()
    for name, top in ((INCEPTION_TOP_FILE, True), (INCEPTION_NOTOP_FILE, False)):
        if (cache / name).is_file():
            return cache / name, top
    return None, False


def resolve_source(e: GanEvaluationConfig) -> str:
    """"inception", "classifier" or "backbone": what "auto" picks (no TensorFlow)."""
    if e.features != "auto":
        return e.features
    if inception_weights()[0] is not None:
        return "inception"
    if e.classifier_run.strip() and (Path(e.classifier_run) / "model.keras").is_file():
        return "classifier"
    return "backbone"


def describe_source(e: GanEvaluationConfig) -> str:
    """The network FID would use, in words, before anything is built (for the UI)."""
    source = resolve_source(e)
    if source == "inception":
        path, top = inception_weights()
        if path is None:
            return f"InceptionV3: its ImageNet weights are not in {keras_cache_dir()} (put {INCEPTION_TOP_FILE} there)"
        return "InceptionV3, ImageNet weights" + ("" if top else " without the top (no Inception Score)")
    if source == "classifier":
        return f"the classifier of run {Path(e.classifier_run).name} (penultimate layer)"
    return f"{e.backbone} backbone, {_weights_words(e)}"


def _weights_words(e: GanEvaluationConfig) -> str:
    if e.backbone_weights == "imagenet":
        from workbench.core.config.backbone_catalogue import BACKBONES
        from workbench.core.config.weights_files import imagenet_weights_cached

        spec = BACKBONES.get(e.backbone)
        if spec is not None and imagenet_weights_cached(spec, BACKBONE_FEATURE_SIZE) is None:
            return "ImageNet weights (not in the Keras cache here: random weights are used)"
        return "ImageNet weights"
    if e.backbone_weights == "file":
        return f"weights from {Path(e.weights_file).name}"
    return "random weights (compare runs of one setup only)"
