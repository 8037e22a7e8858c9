"""Models in MC mode: the default digit classifier, converting any Sequential or functional
model (every Dropout becomes `MCDropout`), loading a .keras file, and fitting."""

from __future__ import annotations

import keras
import numpy as np

from reviewer.ml.mc.graph import require_graph_model, walk_layers
from reviewer.ml.mc.layers import MCDropout
from reviewer.ml.mc.sampling import reseed


def build_default_model(input_shape=(28, 28, 1), num_classes=10, *, seed=None) -> keras.Model:
    """The small MNIST-style CNN; its penultimate Dense layer is named "features".

    With ``seed``, the initial weights depend on it alone: Keras draws each initializer's
    seed from Python's global random state when the layer is built, which ``train`` seeds
    only afterwards."""
    if seed is not None:
        keras.utils.set_random_seed(seed)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(input_shape),
            layers.Conv2D(32, 3, activation="relu"),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            MCDropout(0.25),
            layers.Flatten(),
            layers.Dense(128, activation="relu", name="features"),
            MCDropout(0.5),
            layers.Dense(num_classes, activation="softmax", name="probabilities"),
        ],
        name="mc_cnn",
    )


def build_mobilenet_classifier(
    calibration: np.ndarray, num_classes: int = 10, *, dropout: float = 0.2, seed: int = 0
) -> keras.Model:
    """A user-style RGB model for benchmarks: MobileNetV2 (random weights: nothing is
    downloaded) at ``calibration``'s image size, global average pooling, a plain Keras Dropout
    and a Dense head. Random weights leave batch-norm statistics at their defaults and the
    features near zero (every dropout sample alike), so one pass over ``calibration`` images
    sets each batch norm's moving statistics to that batch's: the activations are then those
    of a network in use."""
    keras.utils.set_random_seed(seed)
    backbone = keras.applications.MobileNetV2(
        input_shape=calibration.shape[1:], include_top=False, weights=None, pooling="avg"
    )
    hidden = keras.layers.Dropout(dropout)(backbone.output)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="head")(hidden)
    model = keras.Model(backbone.input, outputs, name="mobilenetv2_classifier")
    norms = [x for x in walk_layers(model) if isinstance(x, keras.layers.BatchNormalization)]
    momentum = [x.momentum for x in norms]
    for layer in norms:
        layer.momentum = 0.0
    model(calibration, training=True)
    for layer, value in zip(norms, momentum, strict=True):
        layer.momentum = value
    return model


def _spatial_noise_shape(layer):
    """The noise shape that drops whole channels, as keras' SpatialDropout layers do."""
    if isinstance(layer, keras.layers.SpatialDropout1D):
        return (None, 1, None)
    spatial = (1,) * (2 if isinstance(layer, keras.layers.SpatialDropout2D) else 3)
    if layer.data_format == "channels_first":
        return (None, None, *spatial)
    return (None, *spatial, None)


def _mc_clone(layer):
    spatial = (
        keras.layers.SpatialDropout1D,
        keras.layers.SpatialDropout2D,
        keras.layers.SpatialDropout3D,
    )
    if isinstance(layer, spatial):
        return MCDropout(layer.rate, _spatial_noise_shape(layer), layer.seed, name=layer.name)
    if isinstance(layer, keras.layers.Dropout):
        return MCDropout(layer.rate, layer.noise_shape, layer.seed, name=layer.name)
    return layer.__class__.from_config(layer.get_config())


def to_mc_model(model) -> keras.Model:
    """Clone a Sequential/functional model with every Dropout replaced by MCDropout.

    Nested models are converted too; weights are copied, so the clone predicts like the
    original except that dropout now samples. Raises ValueError for a subclassed model or a
    model without any dropout layer.
    """
    require_graph_model(model, "cannot be converted")
    if not any(isinstance(x, keras.layers.Dropout | MCDropout) for x in walk_layers(model)):
        raise ValueError(
            f"model {model.name!r} has no Dropout layer: MC dropout needs at least one"
        )
    clone = keras.models.clone_model(model, clone_function=_mc_clone, recursive=True)
    clone.set_weights(model.get_weights())
    return clone


def load_model(path) -> keras.Model:
    """Load a .keras file (MCDropout is registered by importing this module), uncompiled."""
    return keras.saving.load_model(path, compile=False)


def train(
    model,
    x,
    y,
    *,
    epochs,
    batch_size=128,
    validation_data=None,
    seed=0,
    verbose=1,
    callbacks=None,
) -> dict:
    """Fit `model` (compiling it with Adam + sparse cross-entropy if needed); returns history."""
    keras.utils.set_random_seed(seed)
    mc_layers = [x for x in walk_layers(model) if isinstance(x, MCDropout)]
    reseed(mc_layers, np.random.SeedSequence(seed))  # they were seeded when built
    if not model.compiled:
        model.compile(
            optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
        )
    history = model.fit(
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        validation_data=validation_data,
        verbose=verbose,
        callbacks=callbacks,
    )
    return history.history
