"""The compiled TensorFlow pieces of sampling: a thinned Dense over t masks at once, a
deterministic layer over [t, N, ...], and the tf.functions of the fast, repeated and
one-mask paths (built once per plan)."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from reviewer.ml.mc.layers import one_mask_per_batch
from reviewer.ml.mc.plan import Thinned


def _thinned_dense(h, step, seed, t, shared):
    """Dense(dropout(h)) for t masks at once, the masks zeroing rows of the kernel.

    shared: h is [N, D], the same for every sample: one wide matmul [N, D] x [D, t·units].
    Otherwise h is [t, N, D] and sample i uses its own thinned kernel (a batched matmul).
    Returns [t, N, units].
    """
    kernel = keras.ops.convert_to_tensor(step.dense.kernel)
    d, units = kernel.shape
    keep = tf.random.stateless_uniform(tf.stack([t, d]), seed) >= step.rate
    scale = tf.cast(keep, kernel.dtype) / (1.0 - step.rate)  # [t, D], inverted dropout
    if shared:
        wide = tf.reshape(tf.transpose(scale)[:, :, None] * kernel[:, None, :], [d, -1])
        z = tf.transpose(tf.reshape(h @ wide, [-1, t, units]), [1, 0, 2])
    else:
        z = h @ (scale[:, :, None] * kernel)
    if step.dense.use_bias:
        z += step.dense.bias
    return step.dense.activation(z)


def _per_sample(layer, h):
    """Apply a deterministic layer to h [t, N, ...] as one batch of t·N examples."""
    lead = tf.shape(h)[:2]
    y = layer(tf.reshape(h, [-1, *h.shape[2:]]), training=False)
    return tf.reshape(y, [lead[0], lead[1], *y.shape[1:]])


def spec(shape):
    return tf.TensorSpec([None, *shape[1:]], tf.float32)


def fast_function(plan):
    steps = plan.fast_steps
    n_thinned = sum(isinstance(s, Thinned) for s in steps)

    def run(h, seeds, t):
        shared, k = True, 0  # shared: h has no sample axis yet
        for step in steps:
            if isinstance(step, Thinned):
                h = _thinned_dense(h, step, seeds[k], t, shared)
                shared, k = False, k + 1
            else:
                h = step(h, training=False) if shared else _per_sample(step, h)
        return h

    signature = [
        spec(plan.suffix.inputs[0].shape),
        tf.TensorSpec([n_thinned, 2], tf.int64),
        tf.TensorSpec([], tf.int32),
    ]
    return tf.function(run, input_signature=signature)


FEATURE_GRID = 4  # a spatial map is averaged onto at most this many cells a side


def _feature_grid(shape):
    """The cells a spatial map is averaged onto (a side of unknown size: FEATURE_GRID), or
    None when the output is not a map or already small enough."""
    if len(shape) != 4:
        return None
    sides = [FEATURE_GRID if side is None else min(side, FEATURE_GRID) for side in shape[1:3]]
    return None if sides == list(shape[1:3]) else tuple(sides)


def features_width(shape) -> int:
    """D, the width of the features of a prefix output of ``shape``; ValueError when it
    depends on the input (a side of unknown size that is not a spatial map's)."""
    grid = _feature_grid(shape)
    kept = shape[1:] if grid is None else (*grid, shape[3])
    if None in kept:
        raise ValueError(f"the prefix output {tuple(shape)} has no fixed size to read features of")
    return math.prod(kept)


def features_function(shape):
    """The OOD features of a prefix output h of ``shape``: a spatial map [N, H, W, C] averaged
    onto at most FEATURE_GRID x FEATURE_GRID cells (area resizing: each cell the mean of its
    window), then flattened to [N, D]; other outputs are flattened as they are. Sides that the
    grid divides are average-pooled (the same means, five times faster on a CPU)."""
    grid = _feature_grid(shape)
    windows = None
    if grid is not None and None not in shape[1:3]:
        pairs = list(zip(shape[1:3], grid, strict=True))
        if all(side % cells == 0 for side, cells in pairs):
            windows = tuple(side // cells for side, cells in pairs)

    def run(h):
        if windows is not None:
            h = tf.nn.avg_pool2d(h, windows, windows, "VALID")
        elif grid is not None:
            h = tf.image.resize(h, grid, method="area")
        return tf.reshape(h, [tf.shape(h)[0], -1])

    return tf.function(run, input_signature=[spec(shape)])


def repeat_function(net):
    """t stochastic passes of `net` over h [N, ...] as one batch of t·N rows -> [t, N, K]."""

    def run(h, t):
        tiled = tf.tile(h, tf.concat([[t], tf.ones([tf.rank(h) - 1], tf.int32)], 0))
        y = net(tiled, training=False)
        return tf.reshape(y, [t, -1, y.shape[-1]])

    return tf.function(
        run, input_signature=[spec(net.inputs[0].shape), tf.TensorSpec([], tf.int32)]
    )


def one_pass_one_mask(net):
    """One stochastic pass of `net` over h [N, ...] with one mask for all N rows -> [1, N, K]."""

    def run(h):
        token = one_mask_per_batch.set(True)  # read while tracing: the graph keeps it
        try:
            return net(h, training=False)[None]
        finally:
            one_mask_per_batch.reset(token)

    return tf.function(run, input_signature=[spec(net.inputs[0].shape)])


def compiled(plan, key, build):
    if key not in plan.functions:
        plan.functions[key] = build()
    return plan.functions[key]
