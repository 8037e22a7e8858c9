"""The `MCDropout` layer: dropout that stays on at inference, and the switches the sampler
flips (dropout off for a deterministic pass, one mask per batch for shared-mask passes)."""

from __future__ import annotations

import contextlib
import contextvars

import keras

# Set for a deterministic pass (`dropout_disabled`): MCDropout then acts as the identity.
dropout_off = contextvars.ContextVar("reviewer_mc_dropout_off", default=False)
# Set while tracing a shared-masks pass (`sample(shared_masks=True)`): MCDropout draws one mask
# for the whole batch, its noise shape 1 on the batch axis.
one_mask_per_batch = contextvars.ContextVar("reviewer_mc_one_mask_per_batch", default=False)


@keras.saving.register_keras_serializable(package="reviewer")
class MCDropout(keras.layers.Layer):
    """Inverted dropout applied on every call, whatever `training` says.

    Keras ignores `Dropout(p)(x, training=True)` at `predict` time in a functional model, so MC
    dropout needs a layer whose `call` always drops. `noise_shape` works as in
    `keras.layers.Dropout` (None entries take the input's size), which lets spatial dropout
    convert too. The layer's seed generator makes runs reproducible from `seed`.
    """

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"MCDropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else tuple(noise_shape)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs, training=None):
        if self.rate == 0.0 or dropout_off.get():
            return inputs
        noise_shape = self.noise_shape
        if one_mask_per_batch.get():
            rest = noise_shape[1:] if noise_shape else (None,) * (len(inputs.shape) - 1)
            noise_shape = (1, *rest)
        return keras.random.dropout(
            inputs, self.rate, noise_shape=noise_shape, seed=self.seed_generator
        )

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = {"rate": self.rate, "noise_shape": self.noise_shape, "seed": self.seed}
        return {**super().get_config(), **config}


@contextlib.contextmanager
def dropout_disabled():
    token = dropout_off.set(True)
    try:
        yield
    finally:
        dropout_off.reset(token)
