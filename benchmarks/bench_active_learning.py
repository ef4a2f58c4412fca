"""Active learning: validation accuracy after K rounds of labelling, uncertainty ranking vs random picks.

The data is made here: 16x16 grey "glyphs", one random smoothed template per class, each image a
shifted template blended with another class's (the blend weight draws ambiguous images near the
class boundaries), plus pixel noise. Every round starts from a small labelled pool, retrains the
learner from scratch, and adds M images from the unlabelled pool: the top M by predictive entropy,
the top M by BALD (mutual information), or M random ones. The ranking is the app's
(`engine.dropout.mc_samples`, `entropy`, `mutual_information`, as `rank_unlabelled` uses them);
the learner is a small plain-Keras CNN with a dropout head (not `training.run`, whose run folders
and callbacks would dominate the time of fits this small). Mean and spread over seeds, all three
strategies side by side in one process.
"""

from __future__ import annotations

import os
import statistics
import time

import numpy as np

SIZE, CLASSES, NOISE = 16, 6, 0.25
POOL, VALIDATION = 1500, 600
START, ADD, ROUNDS = 24, 24, 5
EPOCHS, MC_PASSES = 40, 20
STRATEGIES = ("random", "entropy", "bald")


def templates(rng: np.random.Generator) -> np.ndarray:
    """One smoothed random pattern per class, scaled to 0..1."""
    raw = rng.random((CLASSES, SIZE + 2, SIZE + 2))
    smooth = sum(raw[:, dy:dy + SIZE, dx:dx + SIZE] for dy in range(3) for dx in range(3)) / 9
    smooth -= smooth.min(axis=(1, 2), keepdims=True)
    return smooth / smooth.max(axis=(1, 2), keepdims=True)


def make_data(count: int, patterns: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, CLASSES, count)
    others = (labels + rng.integers(1, CLASSES, count)) % CLASSES
    weight = rng.uniform(0.55, 1.0, count)[:, None, None]  # near 0.5: ambiguous
    shifts = rng.integers(-1, 2, (count, 2))
    images = np.empty((count, SIZE, SIZE), np.float32)
    for i in range(count):
        mixed = weight[i] * patterns[labels[i]] + (1 - weight[i]) * patterns[others[i]]
        images[i] = np.roll(mixed, tuple(shifts[i]), axis=(0, 1))
    images += rng.normal(0, NOISE, images.shape).astype(np.float32)
    return images[..., None], labels


def learner(seed: int):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([
        keras.Input((SIZE, SIZE, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(CLASSES, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def scores(model, images: np.ndarray, strategy: str, rng: np.random.Generator) -> np.ndarray:
    from workbench.core.engine import dropout

    if strategy == "random":
        return rng.random(len(images))
    samples = dropout.mc_samples(model, images, passes=MC_PASSES, batch_size=256)
    return dropout.entropy(samples.mean(axis=0)) if strategy == "entropy" else dropout.mutual_information(samples)


def one_seed(seed: int, strategy: str) -> list[float]:
    """Validation accuracy after each round (the first: the starting pool only)."""
    rng = np.random.default_rng(seed)
    patterns = templates(np.random.default_rng(1000 + seed))
    pool_x, pool_y = make_data(POOL, patterns, rng)
    val_x, val_y = make_data(VALIDATION, patterns, rng)
    labelled = list(rng.choice(POOL, START, replace=False))
    pick_rng = np.random.default_rng(seed + 1)
    accuracies = []
    for round_ in range(ROUNDS + 1):
        model = learner(seed * 100 + round_)
        order = np.concatenate([pick_rng.permutation(labelled) for _ in range(EPOCHS)])  # one long epoch:
        model.fit(pool_x[order], pool_y[order], epochs=1, batch_size=32, verbose=0)  # no per-epoch overhead
        accuracies.append(float(model.evaluate(val_x, val_y, verbose=0)[1]))
        if round_ == ROUNDS:
            break
        rest = np.setdiff1d(np.arange(POOL), labelled)
        s = scores(model, pool_x[rest], strategy, pick_rng)
        labelled += list(rest[np.argsort(-s, kind="stable")[:ADD]])
    return accuracies


def run(seeds: int = 4) -> dict:
    import keras

    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    results = {s: [one_seed(seed, s) for seed in range(seeds)] for s in STRATEGIES}
    seconds = time.perf_counter() - started
    keras.backend.clear_session()

    def cell(strategy: str, round_: int) -> str:
        values = [r[round_] for r in results[strategy]]
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"

    rows = []
    for round_ in range(ROUNDS + 1):
        labelled = START + ADD * round_
        rows.append((f"round {round_}: {labelled} labelled, accuracy random / entropy / BALD",
                     " / ".join(cell(s, round_) for s in STRATEGIES), "start: the same random pool" if not round_
                     else ""))
    final = {s: statistics.mean(r[ROUNDS] for r in results[s]) for s in STRATEGIES}
    wins = {s: sum(results[s][i][ROUNDS] > results["random"][i][ROUNDS] for i in range(seeds))
            for s in ("entropy", "bald")}
    curve = {s: statistics.mean(statistics.mean(r[1:]) for r in results[s]) for s in STRATEGIES}
    rows.append((f"mean accuracy over rounds 1-{ROUNDS} (area under the curve) random / entropy / BALD",
                 " / ".join(f"{curve[s]:.3f}" for s in STRATEGIES), "steadier than one round's figure"))
    rows.append(("after the last round: entropy - random, BALD - random",
                 f"{final['entropy'] - final['random']:+.3f} / {final['bald'] - final['random']:+.3f}",
                 f"beats random in {wins['entropy']} / {wins['bald']} of {seeds} seeds"))
    rows.append(("wall time", f"{seconds:.0f} s", f"{len(STRATEGIES) * seeds * (ROUNDS + 1)} fits"))
    rows.append(("load average (1 min) before / after", f"{load_before:.1f} / {os.getloadavg()[0]:.1f}",
                 "other processes share the cores: wall time grows with the load"))
    return {
        "name": "Active learning: uncertainty ranking vs random picks",
        "setup": f"Generated {SIZE}x{SIZE} grey glyphs, {CLASSES} classes (a smoothed random template per class, "
                 f"shifted by up to 1 px, blended 55-100 % with another class's, Gaussian noise 0.25); a pool of "
                 f"{POOL} unlabelled and {VALIDATION} validation images. Start with {START} random labels, then "
                 f"{ROUNDS} rounds of adding the top {ADD} by predictive entropy, by BALD (mutual information, "
                 f"{MC_PASSES} Monte-Carlo dropout passes, the app's engine/dropout.py), or {ADD} random ones; the "
                 f"learner (plain Keras: 2 conv layers, dense 64, dropout 0.5, Adam, {EPOCHS} epochs) is retrained "
                 f"from scratch each round. Mean ± standard deviation over {seeds} seeds.",
        "rows": rows,
    }


if __name__ == "__main__":
    print(run())
