"""FID and the Inception Score of a GAN's generator, from a network that works offline.

FID compares the mean and covariance of a network's features on real and on generated
images (the Fréchet distance of two Gaussians: 0 for the same set, larger the more they
differ). The Inception Score needs a softmax: exp(E[KL(p(y|x) || p(y))]).

The network, in order of preference for "auto":
- InceptionV3 with ImageNet weights, when that file is in the Keras cache (~/.keras/models):
  the standard FID features (2048, the pool layer) and, with its top, the Inception Score;
- the user's own trained classifier (a run folder): its penultimate layer, and its softmax;
- a backbone from the registry (ImageNet weights from the cache, a weights file, or random
  weights, which still rank generators of one setup but compare with nothing else).
Every result says which network was used, in words. The matrix square root is done with
numpy's eigh (SciPy is not a dependency).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.config.gan import GanConfig, GanEvaluationConfig
from workbench.core.config.gan_features import (
    BACKBONE_FEATURE_SIZE,
    INCEPTION_TOP_FILE,
    inception_weights,
    resolve_source,
)
from workbench.core.config.weights_files import keras_cache_dir

INCEPTION_SIZE = 299


CALIBRATION_IMAGES = 256


FID_FILE = "fid.json"


class FeaturesUnavailable(Exception):
    """The chosen network cannot be had (no weights file, no trained classifier); the message says what to do."""


@dataclass
class FeatureNetwork:
    """images (N, S, S, 3) as 0..255 floats -> (features, class probabilities or None when it has no softmax)."""

    description: str
    size: int
    fn: Callable[[Any], tuple[Any, Any]]
    has_softmax: bool = False
    # Random weights: BatchNorm's moving statistics are set from these real images first (see _backbone)
    calibrate: Callable[[np.ndarray], None] | None = None

    def resized(self, images: np.ndarray) -> Any:
        import tensorflow as tf

        x = tf.convert_to_tensor(np.asarray(images, np.float32))
        if x.shape[1] != self.size or x.shape[2] != self.size:
            x = tf.image.resize(x, (self.size, self.size), method="bilinear")
        return x

    def run(self, images: np.ndarray, batch: int = 64) -> tuple[np.ndarray, np.ndarray | None]:
        feats, probs = [], []
        for i in range(0, len(images), batch):
            x = self.resized(images[i:i + batch])
            f, p = self.fn(x)
            feats.append(np.asarray(f, np.float64).reshape(len(x), -1))
            if p is not None:
                probs.append(np.asarray(p, np.float64))
        features = np.concatenate(feats) if feats else np.zeros((0, 0))
        return features, (np.concatenate(probs) if probs else None)


def open_network(e: GanEvaluationConfig) -> FeatureNetwork:
    """Build the feature network the evaluation settings choose. Raises FeaturesUnavailable."""
    source = resolve_source(e)
    if source == "inception":
        return _inception()
    if source == "classifier":
        return _classifier(e.classifier_run)
    return _backbone(e)


def _inception() -> FeatureNetwork:
    import keras

    path, top = inception_weights()
    if path is None:
        raise FeaturesUnavailable(f"the ImageNet weights of InceptionV3 are not in {keras_cache_dir()}: put "
                                  f"{INCEPTION_TOP_FILE} there (from a machine where Keras downloaded it), or choose "
                                  "a classifier or a backbone for the features")
    model = keras.applications.InceptionV3(include_top=top, weights=None, input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
                                           pooling=None if top else "avg")
    try:
        model.load_weights(str(path))
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign file
        raise FeaturesUnavailable(f"{path} cannot be loaded into InceptionV3: {str(exc).splitlines()[0][:200]}") from None

    def preprocess(x):
        return x / 127.5 - 1.0

    if top:
        both = keras.Model(model.inputs, [model.get_layer("avg_pool").output, model.outputs[0]])

        def with_scores(x):
            features, probabilities = both(preprocess(x), training=False)
            return features, probabilities

        return FeatureNetwork("InceptionV3, ImageNet weights (pool features, 2048)", INCEPTION_SIZE, with_scores, True)

    def pooled(x):
        return model(preprocess(x), training=False), None

    return FeatureNetwork("InceptionV3, ImageNet weights without the top (pool features, 2048; no Inception Score)",
                          INCEPTION_SIZE, pooled)


def _classifier(run_dir: str) -> FeatureNetwork:
    import keras

    from workbench.core.analysis.predict import load_run_model
    from workbench.core.runs.store import RunError

    try:
        loaded = load_run_model(run_dir)
    except RunError as exc:
        raise FeaturesUnavailable(str(exc)) from None
    model = loaded.model
    try:
        penultimate = model.get_layer("predictions").input
    except ValueError:
        raise FeaturesUnavailable(f"the model of run {Path(run_dir).name} has no 'predictions' layer: "
                                  "choose a Workbench classifier") from None
    both = keras.Model(model.inputs, [penultimate, model.outputs[0]])

    def with_scores(x):
        features, probabilities = both(x, training=False)
        return features, probabilities

    width = int(penultimate.shape[-1])
    text = (f"the classifier of run {Path(run_dir).name} (penultimate layer, {width} features; "
            f"{len(loaded.class_names)} classes for the Inception Score)")
    return FeatureNetwork(text, loaded.image_size, with_scores, True)


def _backbone(e: GanEvaluationConfig) -> FeatureNetwork:
    import keras

    from workbench.core.config import backbone_catalogue
    from workbench.core.config.run import BackboneConfig
    from workbench.core.engine import layers, weights

    spec = backbone_catalogue.get_backbone(e.backbone)
    size = max(BACKBONE_FEATURE_SIZE, spec.min_size)
    source = e.backbone_weights
    note = ""
    if source == "imagenet" and weights.imagenet_weights_cached(spec, size) is None:
        source, note = "none", " (its ImageNet weights are not in the Keras cache here)"
    config = BackboneConfig(name=spec.name, weights=source, weights_file=e.weights_file,
                            width=1.0 if 1.0 in spec.widths else spec.widths[0])
    try:
        backbone = weights.load_backbone(config, size)
    except (weights.WeightsUnavailable, weights.WeightsMismatch) as exc:
        raise FeaturesUnavailable(str(exc)) from None
    inputs = keras.Input((size, size, 3))
    x = layers.Preprocess(spec.preprocess)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(backbone(x))
    model = keras.Model(inputs, x)

    def features(x):
        return model(x, training=False), None

    network = FeatureNetwork("", size, features)
    if source == "none":
        def calibrate(real: np.ndarray) -> None:
            """Random BatchNorm statistics (mean 0, variance 1) make a deep network's features vanish
            (a random MobileNetV2 gives FID ~0 for any two sets); one training-mode pass with
            momentum 0 sets them from the real images, so features keep their spread."""
            from workbench.core.engine.layers import walk_layers

            norms = [la for la in walk_layers(model) if isinstance(la, keras.layers.BatchNormalization)]
            saved = [la.momentum for la in norms]
            for la in norms:
                la.momentum = 0.0
            model(network.resized(real[:CALIBRATION_IMAGES]), training=True)
            for la, m in zip(norms, saved, strict=True):
                la.momentum = m

        network.calibrate = calibrate
    words = {"imagenet": "ImageNet weights", "file": f"weights from {Path(e.weights_file).name}",
             "none": "random weights, BatchNorm set from the real images: compare runs of one setup only"}[source]
    network.description = (f"{spec.name} backbone, {words}{note} (pooled features, {int(x.shape[-1])}; "
                           "no Inception Score: it has no classifier)")
    return network


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The Fréchet distance between Gaussians fitted to two sets of features (rows are samples).

    |mu1 - mu2|^2 + Tr(S1) + Tr(S2) - 2 Tr(sqrt(S1 S2)). The eigenvalues of S1 S2 (real and
    non-negative: a product of two covariances) are found with eigh on a symmetric matrix:
    with fewer samples than features, those of (A B^T)(B A^T) / ((n1-1)(n2-1)) for the centred
    sets A and B (as small as the smaller set: fast and exact); otherwise those of
    sqrt(S1) S2 sqrt(S1).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise ValueError("FID needs two sets of at least 2 feature vectors of the same length")
    (n1, dims), n2 = a.shape, len(b)
    mu1, mu2 = a.mean(axis=0), b.mean(axis=0)
    centred_a, centred_b = a - mu1, b - mu2
    trace1 = float((centred_a * centred_a).sum()) / (n1 - 1)
    trace2 = float((centred_b * centred_b).sum()) / (n2 - 1)
    if min(n1, n2) < dims:
        cross = centred_a @ centred_b.T
        middle = (cross @ cross.T if n1 <= n2 else cross.T @ cross) / ((n1 - 1) * (n2 - 1))
    else:
        root = _sqrt_psd(np.atleast_2d(np.cov(a, rowvar=False)))
        middle = root @ np.atleast_2d(np.cov(b, rowvar=False)) @ root
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff + trace1 + trace2 - 2.0 * trace_sqrt))


def inception_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """(mean, std) over `splits` parts of exp(E_x[KL(p(y|x) || p(y))]): 1 (no information) .. number of classes."""
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, 1.0)
    splits = max(1, min(splits, len(p) // 10 or 1))
    scores = []
    for part in np.array_split(p, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part) - np.log(marginal))).sum(axis=1).mean()
        scores.append(math.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


@dataclass(frozen=True)
class FidResult:
    fid: float
    network: str
    inception_score: float | None = None
    inception_score_std: float | None = None
    real_images: int = 0
    generated_images: int = 0

    def text(self) -> str:
        score = "" if self.inception_score is None else (
            f", Inception Score {self.inception_score:.3f} ± {self.inception_score_std:.3f}")
        return f"FID {self.fid:.3f}{score} ({self.real_images} real vs {self.generated_images} generated; features: {self.network})"


def compare(network: FeatureNetwork, real: np.ndarray, generated: np.ndarray) -> FidResult:
    """FID of two image sets (0..255, any size) and the Inception Score of the second, with `network`."""
    if network.calibrate is not None:
        network.calibrate(real)
    f_real, _ = network.run(real)
    f_gen, p_gen = network.run(generated)
    score = inception_score(p_gen) if p_gen is not None else (None, None)
    return FidResult(frechet_distance(f_real, f_gen), network.description, score[0], score[1], len(real), len(generated))


def load_real_images(paths: Sequence[str], image_size: int, count: int, seed: int = 0) -> np.ndarray:
    """Up to `count` of the images (a seeded random choice), decoded as in training, uint8 (N, S, S, 3)."""
    from workbench.core.data.decode import decode_files

    chosen = list(paths)
    if len(chosen) > count:
        order = np.random.default_rng(seed).permutation(len(chosen))[:count]
        chosen = [chosen[i] for i in sorted(order)]
    # The training stream's reader; a file that went away is left out: compare the others.
    images = [image for image, _ in decode_files(chosen, image_size) if image is not None]
    return np.stack(images) if images else np.zeros((0, image_size, image_size, 3), np.uint8)


def generate_images(generator: Any, count: int, latent_size: int, seed: int = 0, batch: int = 128) -> np.ndarray:
    """`count` generated images as uint8 (inference mode), from noise seeded apart from the training's."""
    from workbench.core.gan.networks import to_uint8

    noise = np.random.default_rng(seed + 7919).standard_normal((count, latent_size)).astype(np.float32)
    out = [to_uint8(np.asarray(generator(noise[i:i + batch], training=False))) for i in range(0, count, batch)]
    return np.concatenate(out)


def evaluate_generator(generator: Any, config: GanConfig, paths: Sequence[str],
                       network: FeatureNetwork | None = None) -> FidResult:
    """FID of a generator against the run's real images (as many of each as evaluation.samples)."""
    e = config.evaluation
    network = network or open_network(e)
    real = load_real_images(paths, config.data.image_size, e.samples, config.training.seed)
    if len(real) < 2:
        raise FeaturesUnavailable("fewer than 2 real images could be read")
    generated = generate_images(generator, len(real), config.model.latent_size, config.training.seed)
    return compare(network, real, generated)


def evaluate_run(run_dir: str | os.PathLike, evaluation: GanEvaluationConfig | None = None) -> FidResult:
    """FID of a GAN run's saved generator; also written to the run folder's fid.json.

    Raises FeaturesUnavailable (or ConfigError / FileNotFoundError) with a readable message.
    """
    from workbench.core.base.files import atomic_write_text
    from workbench.core.config.gan import load_gan_config
    from workbench.core.gan.images import find_images
    from workbench.core.gan.networks import load_generator

    run = Path(run_dir)
    config = load_gan_config(run / "config.json")
    if evaluation is not None:
        config.evaluation = evaluation
    images = find_images(config.data.folder, config.data.class_name)
    if images.problems:
        raise FeaturesUnavailable("the run's real images cannot be read: " + "; ".join(p.message for p in images.problems))
    generator = load_generator(run)
    result = evaluate_generator(generator, config, images.paths)
    atomic_write_text(run / FID_FILE, json.dumps({**asdict(result), "features": asdict(config.evaluation)}, indent=2) + "\n")
    return result
