"""Deterministic OOD features [N, D]: the output of the model's deterministic prefix (the input
of its first MC-dropout layer), a spatial map averaged onto at most a 4x4 grid
(reviewer.ml.mc.compiled.features_function). What the OOD score measures distances in; the
sampler reads the same features from the prefix output it computes for the samples. Also the
penultimate features and logits (`head_inputs`) the benchmark's other OOD methods measure."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from reviewer.ml.mc.compiled import compiled, features_function, features_width, spec
from reviewer.ml.mc.graph import last_dense
from reviewer.ml.mc.layers import dropout_disabled
from reviewer.ml.mc.plan import cached, make_plan
from reviewer.ml.mc.sampling import as_batch


def _features_function(model):
    plan = cached(model, "plan", make_plan)
    if plan.why_not_prefix:
        raise ValueError(
            f"model {model.name!r} has no deterministic prefix to read features of: "
            + plan.why_not_prefix
        )
    shape = plan.suffix.inputs[0].shape
    pool, prefix = compiled(plan, "features", lambda: features_function(shape)), plan.prefix

    def run(x):
        return pool(x if prefix is None else prefix(x, training=False))

    return tf.function(run, input_signature=[spec(model.inputs[0].shape)]), features_width(shape)


def features(model, images, *, batch_size=256) -> np.ndarray:
    """The OOD features [N, D] of ``images`` (see the module docstring); ValueError for a model
    whose graph cannot be cut at its first dropout."""
    fn, width = cached(model, "features", _features_function)
    x = as_batch(model, images)
    parts = [fn(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(parts) if parts else np.empty((0, width), np.float32)


def _head_function(model):
    dense = last_dense(model)
    if dense is None:
        raise ValueError(f"model {model.name!r} has no top-level Dense layer")
    net = keras.Model(model.inputs[0], dense.input)

    def run(x):
        with dropout_disabled():  # read at trace time: the traced graph has no dropout
            return net(x, training=False)

    signature = [spec(model.inputs[0].shape)]
    return tf.function(run, input_signature=signature), dense


def head_inputs(model, images, *, batch_size=256) -> tuple[np.ndarray, np.ndarray]:
    """(the input of the last Dense layer [N, D], that layer's logits [N, K]), dropout off:
    the penultimate features and logits other OOD methods use (reviewer.bench.ood_methods)."""
    fn, dense = cached(model, "head inputs", _head_function)
    x = as_batch(model, images)
    parts = [fn(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
    inputs = np.concatenate(parts).reshape(len(x), -1)
    kernel, bias = (np.asarray(w, np.float64) for w in dense.get_weights())
    return inputs, inputs @ kernel + bias
