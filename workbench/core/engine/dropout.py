"""Dropout layers by name, and Monte-Carlo dropout prediction.

`mc_predict` keeps dropout active at prediction time to see how much the
answer moves: the spread across passes is a cheap estimate of the model's
uncertainty (Gal and Ghahramani, 2016).
"""

from __future__ import annotations

from typing import Any

DROPOUT_KINDS = ("dropout", "spatial", "gaussian", "alpha", "dropblock")
FEATURE_MAP_ONLY = ("spatial", "dropblock")  # need a (batch, height, width, channels) input


def make_dropout(
    kind: str, rate: float, block_size: int = 3, seed: int | None = None, name: str | None = None
) -> Any:
    """The Keras layer for a dropout kind of the config.

    "dropout" Dropout, "spatial" SpatialDropout2D (whole channels), "gaussian"
    GaussianDropout (multiplicative noise), "alpha" AlphaDropout (keeps SELU
    statistics), "dropblock" DropBlock2D (contiguous squares).
    """
    import keras

    if kind == "dropout":
        return keras.layers.Dropout(rate, seed=seed, name=name)
    if kind == "spatial":
        return keras.layers.SpatialDropout2D(rate, seed=seed, name=name)
    if kind == "gaussian":
        return keras.layers.GaussianDropout(rate, seed=seed, name=name)
    if kind == "alpha":
        return keras.layers.AlphaDropout(rate, seed=seed, name=name)
    if kind == "dropblock":
        from workbench.core.engine.layers import DropBlock2D

        return DropBlock2D(rate, block_size, seed=seed, name=name)
    raise ValueError(f"unknown dropout kind {kind!r}; one of: {', '.join(DROPOUT_KINDS)}")


def dropout_types() -> tuple[type, ...]:
    import keras

    from workbench.core.engine.layers import DropBlock2D

    return (
        keras.layers.Dropout,
        keras.layers.SpatialDropout1D,
        keras.layers.SpatialDropout2D,
        keras.layers.SpatialDropout3D,
        keras.layers.GaussianDropout,
        keras.layers.AlphaDropout,
        DropBlock2D,
    )


def ramp_rate(rate: float, epochs: int, steps_per_epoch: int, epoch: int, batch: int) -> float:
    """DropBlock's rate at a batch of a linear ramp: 0 at the first batch, `rate` after `epochs` epochs."""
    total = max(1, epochs * max(1, steps_per_epoch))
    step = epoch * max(1, steps_per_epoch) + batch
    return float(rate) * min(1.0, max(0, step) / total)


def make_ramp_callback(model: Any, rate: float, epochs: int, steps_per_epoch: int) -> Any:
    """A Keras callback that ramps every DropBlock2D layer's rate linearly from 0 to `rate`.

    Per batch, as in the DropBlock paper (Ghiasi et al., 2018): before batch b of epoch e
    the rate is rate * (e * steps_per_epoch + b) / (epochs * steps_per_epoch), and `rate`
    from epoch `epochs` on. Epoch numbers are Keras's (absolute), so a resumed run carries
    on where its ramp was. At each epoch's end, and at the end of training, the layers get
    the full rate back: a model saved then (the best epoch, the last one) carries the
    configured rate, which is what Monte-Carlo dropout and a later fine-tune should use.
    Put it before the callback that saves the model. Layers inside nested models count too.
    """
    import keras

    from workbench.core.engine.layers import DropBlock2D, walk_layers

    class DropBlockRamp(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rate, self.epochs, self.steps = float(rate), int(epochs), int(steps_per_epoch)
            self.blocks = [layer for layer in walk_layers(model) if isinstance(layer, DropBlock2D)]
            self._epoch = 0

        def rate_at(self, epoch: int, batch: int) -> float:
            return ramp_rate(self.rate, self.epochs, self.steps, epoch, batch)

        def _set(self, value: float) -> None:
            for layer in self.blocks:
                layer.rate.assign(value)

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            self._set(self.rate_at(self._epoch, batch))

        def on_epoch_end(self, epoch, logs=None):
            self._set(self.rate)

        def on_train_end(self, logs=None):
            self._set(self.rate)

    return DropBlockRamp()


def mc_predict(model: Any, images: Any, passes: int = 20, batch_size: int = 32) -> tuple[Any, Any, Any]:
    """Monte-Carlo dropout: (mean probabilities, their std, predictive entropy in nats).

    Shapes (N, classes), (N, classes), (N,). The passes come from `mc_samples`.
    """
    samples = mc_samples(model, images, passes, batch_size)
    mean = samples.mean(axis=0)
    return mean, samples.std(axis=0), entropy(mean)


def has_mc_dropout(model: Any) -> bool:
    """Whether Monte-Carlo passes can differ: the model has a dropout layer at its top level."""
    return any(isinstance(layer, dropout_types()) for layer in model.layers)


def mc_samples(model: Any, images: Any, passes: int = 20, batch_size: int = 32) -> Any:
    """Every pass's probabilities, shape (passes, N, classes); (1, N, classes) without dropout or passes < 2.

    Only the dropout layers of the classifier's head run in training mode: the model is split
    at its first dropout layer, the part before it (preprocessing and the backbone, with its
    BatchNorm and any dropout of its own) runs once in inference mode, and only the head after
    it runs `passes` times with training=True. So the BatchNorm statistics are never touched,
    and MC prediction costs little more than one plain prediction.
    Raises ValueError when the head has a layer other than dropout whose behaviour depends on
    training (BatchNorm, a nested model).
    """
    import keras
    import numpy as np

    images = np.asarray(images, dtype="float32")
    drops = [layer for layer in model.layers if isinstance(layer, dropout_types())]
    if not drops or passes < 2:
        return np.asarray(model.predict(images, batch_size=batch_size, verbose=0), dtype="float32")[None]

    first = drops[0]
    features = keras.Model(model.inputs[0], first.input).predict(images, batch_size=batch_size, verbose=0)
    head = keras.Model(first.input, model.outputs[0])
    for layer in head.layers:
        if isinstance(layer, (keras.layers.BatchNormalization, keras.Model)):
            raise ValueError(
                f"Monte-Carlo dropout cannot run layer '{layer.name}' in training mode "
                "without changing it; it needs a head of dense and dropout layers"
            )

    samples = np.empty((passes, len(images), head.outputs[0].shape[-1]), dtype="float32")
    for start in range(0, len(images), batch_size):
        batch = features[start : start + batch_size]
        for p in range(passes):
            samples[p, start : start + len(batch)] = keras.ops.convert_to_numpy(head(batch, training=True))
    return samples


def entropy(probs: Any) -> Any:
    """Entropy in nats over the last axis."""
    import numpy as np

    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=-1)


def mutual_information(samples: Any) -> Any:
    """BALD: H[mean p] - mean H[p] over the passes (axis 0), in nats, never below 0.

    High when the passes are each sure but disagree: uncertainty of the model rather than of
    the data (Houlsby et al., 2011; Gal et al., 2017). One pass gives 0.
    """
    import numpy as np

    return np.maximum(entropy(samples.mean(axis=0)) - entropy(samples).mean(axis=0), 0.0)
