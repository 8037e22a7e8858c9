"""Deterministic OOD features [N, D]: the output of the model's deterministic prefix (the input
of its first MC-dropout layer), a spatial map averaged onto at most a 4x4 grid
(reviewer.ml.mc.compiled.features_function). What the OOD score measures distances in; the
sampler reads the same features from the prefix output it computes for the samples."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from reviewer.ml.mc.compiled import compiled, features_function, features_width, spec
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
