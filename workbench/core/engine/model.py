"""Build the classifier (backbone + head) and apply a freeze policy.

The classifier takes raw RGB pixels (0..255) and returns class probabilities:

    image -> Preprocess -> backbone (a nested model named "backbone")
          -> [dropout on the feature map] -> pooling -> [dropout before the classifier]
          -> (Dense -> [dropout after dense]) * n -> Dense "predictions" (softmax, float32)

Keeping the backbone one nested model lets its weights be saved and loaded as
one unit (weights.save_backbone_weights) and frozen by the registry's blocks.
"""

from __future__ import annotations

from typing import Any

from workbench.core.base.freeze import FreezeSummary, LayerRow
from workbench.core.config import derived
from workbench.core.config.backbone_catalogue import BackboneSpec, get_backbone
from workbench.core.config.run import BackboneConfig, FreezeConfig, RunConfig
from workbench.core.engine.layers import has_params, walk_layers

REINITIALISED_BN_MOMENTUM = 0.9


def build_model(config: RunConfig, num_classes: int) -> Any:
    """The classifier for a run config. Raises weights.WeightsUnavailable / WeightsMismatch.

    Layer seeds come from config.training.seed, one per dropout layer, so the
    same config drops the same units. A re-initialised backbone ("none") gets
    BatchNorm momentum 0.9: with Keras's 0.99-0.999 the moving statistics never
    catch up on a small dataset and inference scores at chance (docs/measured.md).
    """
    import keras

    from workbench.core.config import backbone_catalogue
    from workbench.core.engine import layers, weights
    from workbench.core.engine.dropout import FEATURE_MAP_ONLY, make_dropout

    spec = backbone_catalogue.get_backbone(config.backbone.name)
    size = config.data.image_size
    backbone = weights.load_backbone(config.backbone, size)
    if not derived.is_pretrained(config.backbone):
        set_batchnorm_momentum(backbone, REINITIALISED_BN_MOMENTUM)
    elif derived.effective_transfer(config.backbone) == "partial" and config.backbone.rest == "reinit":
        rest = transferred_rest(backbone, spec, config.backbone.keep_blocks)
        weights.reinitialise(rest)
        set_batchnorm_momentum_of(rest, REINITIALISED_BN_MOMENTUM)

    d, head = config.dropout, config.head
    seed = config.training.seed
    count = 0

    def dropout(x: Any, where: str, name: str, on_vectors: bool = True) -> Any:
        nonlocal count
        if d.rate <= 0 or where not in d.placement:
            return x
        count += 1
        # Spatial kinds need a feature map; on vectors they become plain dropout.
        kind = "dropout" if on_vectors and d.kind in FEATURE_MAP_ONLY else d.kind
        return make_dropout(kind, d.rate, d.block_size, seed=seed + count, name=name)(x)

    inputs = keras.Input((size, size, 3), name="image")
    x = layers.Preprocess(spec.preprocess, name="preprocess")(inputs)
    x = backbone(x)
    x = dropout(x, "feature_map", "dropout_feature_map", on_vectors=False)
    pooling = {
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
        "flatten": keras.layers.Flatten,
    }[head.pooling]
    x = pooling(name="pool")(x)
    x = dropout(x, "before_classifier", "dropout_before_classifier")
    for i, units in enumerate(head.dense_units, 1):
        x = keras.layers.Dense(units, activation=head.activation, name=f"dense_{i}")(x)
        x = dropout(x, "after_dense", f"dropout_after_dense_{i}")
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="workbench_classifier")


def set_batchnorm_momentum(model: Any, momentum: float) -> None:
    set_batchnorm_momentum_of(walk_layers(model), momentum)


def set_batchnorm_momentum_of(layers: list[Any], momentum: float) -> None:
    import keras

    for layer in layers:
        for inner in [layer, *(walk_layers(layer) if hasattr(layer, "layers") else [])]:
            if isinstance(inner, keras.layers.BatchNormalization):
                inner.momentum = momentum


def transferred_rest(backbone: Any, spec: BackboneSpec, keep_blocks: int) -> list[Any]:
    """The backbone's layers after its first `keep_blocks` blocks (those partial transfer does not keep)."""
    from workbench.core.engine.backbones import block_of_layers

    return [layer for layer, block in zip(backbone.layers, block_of_layers(backbone, spec), strict=True)
            if block >= keep_blocks]


def apply_freeze(model: Any, freeze: FreezeConfig, spec: BackboneSpec, pretrained: bool,
                 transfer: BackboneConfig | None = None) -> FreezeSummary:
    """Set which layers train. Call before `compile` (Keras reads `trainable` there).

    Policies: "all" freezes the backbone (feature extraction); "top_layers"
    trains only its top `freeze.layers` layers that have parameters;
    "top_blocks" only its top `freeze.blocks` blocks of the registry; "none"
    trains everything. With `freeze_batchnorm` and pretrained weights every
    BatchNormalization layer of the backbone is frozen too: a frozen BN layer
    runs in inference mode whatever `training` says, which is the only way to
    keep pretrained statistics in Keras 3 (docs/measured.md). The head always trains.

    With partial transfer (`transfer`) the policy is not used: the
    kept blocks stay frozen and the rest trains (its BatchNorm frozen only when
    it is fine-tuned, since re-initialised statistics must learn).
    """
    import keras

    from workbench.core.engine.backbones import block_of_layers

    # A clean start: every layer trainable, one by one. `model.trainable = True` alone
    # does not reach sub-layers frozen individually by an earlier call (Keras 3.15).
    for layer in [model, *walk_layers(model)]:
        layer.trainable = True
    backbone = model.get_layer("backbone")
    partial = transfer is not None and pretrained and transfer.transfer == "partial"
    if partial:
        rest = {id(layer) for layer in transferred_rest(backbone, spec, transfer.keep_blocks)}
        for layer in backbone.layers:
            layer.trainable = id(layer) in rest
        if transfer.rest == "reinit":
            return model_summary_counts(model)  # re-initialised BatchNorm must learn its statistics
    elif freeze.policy == "all":
        backbone.trainable = False
    elif freeze.policy == "top_layers":
        units = [i for i, layer in enumerate(backbone.layers) if has_params(layer)]
        n = min(max(freeze.layers, 0), len(units))
        first = units[-n] if n else len(backbone.layers)
        for i, layer in enumerate(backbone.layers):
            layer.trainable = i >= first
    elif freeze.policy == "top_blocks":
        first_block = len(spec.blocks) - max(freeze.blocks, 0)
        for layer, block in zip(backbone.layers, block_of_layers(backbone, spec), strict=True):
            layer.trainable = block >= first_block
    elif freeze.policy == "custom":
        names = set(freeze.trainable_layers)
        unknown = sorted(names - {layer.name for layer in backbone.layers})
        if unknown:
            raise ValueError(f"freeze.trainable_layers names layers this backbone lacks: {', '.join(unknown[:5])}")
        for layer in backbone.layers:
            layer.trainable = layer.name in names
    elif freeze.policy != "none":
        raise ValueError(f"unknown freeze policy {freeze.policy!r}; one of: all, top_layers, top_blocks, none, custom")
    if freeze.freeze_batchnorm and pretrained:
        for layer in walk_layers(backbone):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    return model_summary_counts(model)


def freeze_map(model: Any, spec: BackboneSpec) -> list[LayerRow]:
    """The backbone's layers with parameters: name, type, output shape, parameters, block, trainable.

    Apply a freeze policy first to see what it trains; a person's choice of rows becomes
    the "custom" policy's `freeze.trainable_layers`.
    """
    from workbench.core.engine.backbones import block_of_layers

    backbone = model.get_layer("backbone")
    rows = []
    for layer, block in zip(backbone.layers, block_of_layers(backbone, spec), strict=True):
        if not has_params(layer):
            continue
        rows.append(LayerRow(
            name=layer.name, type=type(layer).__name__,
            output_shape=tuple(layer.output.shape[1:]), params=int(layer.count_params()),
            block=spec.blocks[block][0], trainable=bool(layer.trainable_weights),
            trainable_params=_size(layer.trainable_weights),
        ))
    return rows


def model_summary_counts(model: Any) -> FreezeSummary:
    """Trainable layers and parameters of a classifier; the backbone's layers count one by one."""
    units = []
    for layer in model.layers:
        if layer.name == "backbone" and hasattr(layer, "layers"):
            units.extend(inner for inner in layer.layers if has_params(inner))
        elif has_params(layer):
            units.append(layer)
    return FreezeSummary(
        layers_total=len(units),
        layers_trainable=sum(1 for layer in units if layer.trainable_weights),
        params_trainable=_size(model.trainable_weights),
        params_frozen=_size(model.non_trainable_weights),
    )


def _size(variables: list[Any]) -> int:
    import math

    return sum(math.prod(v.shape) for v in variables)


def freeze_for(model: Any, config: RunConfig, phase: int = 0) -> FreezeSummary:
    """Apply the config's freezing to `model`: the one place training, the trainable-layers
    readout and the freeze map turn a config into trainable layers.

    Phase 1 of two-phase fine-tuning freezes the whole backbone; phase 0 and 2 follow the policy.
    """
    spec = get_backbone(config.backbone.name)
    return apply_freeze(model, derived.freeze_for_phase(config, phase), spec,
                        pretrained=derived.is_pretrained(config.backbone),
                        transfer=None if phase == 1 else derived.partial_transfer(config))
