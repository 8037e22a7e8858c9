"""Deterministic penultimate features [N, D] (the input of the last Dense layer, dropout off):
what the OOD score measures distances in."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from reviewer.ml.mc.compiled import spec
from reviewer.ml.mc.graph import graph_nodes, last_dense, require_graph_model, single_input
from reviewer.ml.mc.layers import dropout_disabled
from reviewer.ml.mc.plan import cached
from reviewer.ml.mc.sampling import as_batch


def _features_function(model):
    require_graph_model(model, "has no features to read")
    dense = last_dense(model)
    if dense is None:
        raise ValueError(f"model {model.name!r} has no top-level Dense layer to read features of")
    flat = single_input(graph_nodes(model), dense)
    if flat is None:
        raise ValueError(f"layer {dense.name!r} is shared or takes several inputs")
    net = keras.Model(model.inputs[0], flat)

    def run(x):
        with dropout_disabled():  # read at trace time: the traced graph has no dropout
            return net(x, training=False)

    return tf.function(run, input_signature=[spec(model.inputs[0].shape)]), net.outputs[0].shape


def features(model, images, *, batch_size=256) -> np.ndarray:
    """Deterministic features [N, D]: the input of the last Dense layer, dropout off."""
    fn, shape = cached(model, "features", _features_function)
    x = as_batch(model, images)
    parts = [fn(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
    width = math.prod(shape[1:])  # a non-flat input to the last Dense is flattened
    return (
        np.concatenate(parts).reshape(len(x), width) if parts else np.empty((0, width), np.float32)
    )
