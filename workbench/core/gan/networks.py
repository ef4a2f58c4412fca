"""The DCGAN's generator and discriminator, its training step, and its samples as images."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.config.gan import GanConfig

GENERATOR_FILE = "generator.keras"


def _upsamplings(image_size: int) -> int:
    return int(round(math.log2(image_size / 4)))  # 4x4 -> 32x32: 3, -> 64x64: 4


def build_generator(config: GanConfig) -> Any:
    """noise (latent_size) -> image (size, size, 3) in [-1, 1]: dense to 4x4, then stride-2 transposed convolutions."""
    import keras

    m, size, seed = config.model, config.data.image_size, config.training.seed
    ups = _upsamplings(size)
    init = keras.initializers.RandomNormal(0.0, 0.02, seed=seed)
    channels = m.generator_width * 2 ** (ups - 1)
    inputs = keras.Input((m.latent_size,), name="noise")
    x = keras.layers.Dense(4 * 4 * channels, use_bias=False, kernel_initializer=init, name="project")(inputs)
    x = keras.layers.BatchNormalization(name="project_bn")(x)
    x = keras.layers.ReLU(name="project_relu")(x)
    x = keras.layers.Reshape((4, 4, channels), name="to_4x4")(x)
    for i in range(1, ups):
        channels //= 2
        x = keras.layers.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=False,
                                         kernel_initializer=init, name=f"up_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"up_{i}_bn")(x)
        x = keras.layers.ReLU(name=f"up_{i}_relu")(x)
    outputs = keras.layers.Conv2DTranspose(3, 4, strides=2, padding="same", activation="tanh",
                                           kernel_initializer=init, dtype="float32", name="image")(x)
    return keras.Model(inputs, outputs, name="generator")


def build_discriminator(config: GanConfig) -> Any:
    """image -> one logit (real vs generated): stride-2 convolutions with LeakyReLU, dropout where configured."""
    import keras

    m, d, size, seed = config.model, config.dropout, config.data.image_size, config.training.seed
    init = keras.initializers.RandomNormal(0.0, 0.02, seed=seed + 1)
    inputs = keras.Input((size, size, 3), name="image")
    x = inputs
    channels = m.discriminator_width
    for i in range(1, _upsamplings(size) + 1):
        x = keras.layers.Conv2D(channels, 4, strides=2, padding="same", kernel_initializer=init, name=f"conv_{i}")(x)
        x = keras.layers.LeakyReLU(0.2, name=f"conv_{i}_lrelu")(x)
        if d.rate > 0 and "after_conv" in d.placement:
            x = keras.layers.Dropout(d.rate, seed=seed + 10 + i, name=f"dropout_conv_{i}")(x)
        channels *= 2
    x = keras.layers.Flatten(name="flatten")(x)
    if d.rate > 0 and "before_output" in d.placement:
        x = keras.layers.Dropout(d.rate, seed=seed + 9, name="dropout_output")(x)
    outputs = keras.layers.Dense(1, kernel_initializer=init, dtype="float32", name="logit")(x)
    return keras.Model(inputs, outputs, name="discriminator")


class Gan:
    """Both networks, their optimizers, and the compiled training step."""

    def __init__(self, config: GanConfig):
        import keras
        import tensorflow as tf

        t = config.training
        self.config = config
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        self.g_optimizer = keras.optimizers.Adam(t.generator_learning_rate, beta_1=t.generator_beta_1)
        self.d_optimizer = keras.optimizers.Adam(t.discriminator_learning_rate, beta_1=t.discriminator_beta_1)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.noise = tf.random.Generator.from_seed(t.seed + 2)
        self._real_target = 1.0 - float(t.label_smoothing)  # one-sided: only the real images' targets
        self.train_step = tf.function(self._train_step, reduce_retracing=True)

    def _train_step(self, real):
        import tensorflow as tf

        latent = self.config.model.latent_size
        n = tf.shape(real)[0]
        noise = self.noise.normal([n, latent])
        bce = tf.nn.sigmoid_cross_entropy_with_logits
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(noise, training=True)
            real_logits = self.discriminator(real, training=True)  # dropout active
            fake_logits = self.discriminator(fake, training=True)
            d_loss = (tf.reduce_mean(bce(tf.fill(tf.shape(real_logits), self._real_target), real_logits))
                      + tf.reduce_mean(bce(tf.zeros_like(fake_logits), fake_logits)))
            g_loss = tf.reduce_mean(bce(tf.ones_like(fake_logits), fake_logits))
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        self.g_optimizer.apply_gradients(zip(g_tape.gradient(g_loss, g_vars), g_vars, strict=True))
        self.d_optimizer.apply_gradients(zip(d_tape.gradient(d_loss, d_vars), d_vars, strict=True))
        return (d_loss, g_loss, tf.reduce_mean(tf.sigmoid(real_logits)), tf.reduce_mean(tf.sigmoid(fake_logits)))

    def step(self, real) -> tuple[float, float, float, float]:
        d_loss, g_loss, d_real, d_fake = self.train_step(real)
        return float(d_loss), float(g_loss), float(d_real), float(d_fake)

    def generate(self, noise: np.ndarray, batch: int = 128) -> np.ndarray:
        """Images in [-1, 1] (float32) for a noise batch, in inference mode."""
        out = [np.asarray(self.generator(noise[i:i + batch], training=False)) for i in range(0, len(noise), batch)]
        return np.concatenate(out) if out else np.zeros((0,), np.float32)


def fixed_noise(config: GanConfig) -> np.ndarray:
    t = config.training
    return np.random.default_rng(t.seed).standard_normal((t.samples, config.model.latent_size)).astype(np.float32)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] floats -> 0..255 uint8."""
    return np.clip(np.rint((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def sample_grid(images: np.ndarray, gap: int = 2) -> np.ndarray:
    """A near-square grid (uint8, H x W x 3) of images in [-1, 1], `gap` white pixels apart."""
    pixels = to_uint8(images)
    n, h, w = pixels.shape[:3]
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    grid = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + gap): r * (h + gap) + h, c * (w + gap): c * (w + gap) + w] = pixels[i]
    return grid


def diversity(images: np.ndarray) -> float:
    """How different the samples are: the spread across samples of each pixel, averaged (0: all the same)."""
    images = np.asarray(images, np.float32)
    if len(images) < 2:
        return 0.0
    return float(images.std(axis=0).mean())


def save_png(grid: np.ndarray, path: Path) -> None:
    import io

    from PIL import Image

    from workbench.core.base.files import atomic_write_bytes

    buffer = io.BytesIO()
    Image.fromarray(grid).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def load_generator(run_dir: str | os.PathLike) -> Any:
    """A GAN run's generator.keras, loaded in safe mode. Raises FileNotFoundError with a readable message."""
    import keras

    path = Path(run_dir) / GENERATOR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"the GAN run {Path(run_dir).name} has no {GENERATOR_FILE} (it may have "
                                "failed before its first checkpoint)")
    return keras.saving.load_model(path, safe_mode=True, compile=False)
