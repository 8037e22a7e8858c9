"""What sampling costs: FLOPs per image on each path, and the machine's reachable matmul
speed measured the same way (for `reviewer bench scoring`)."""

from __future__ import annotations

import math
import os

import keras
import numpy as np
import tensorflow as tf

from reviewer.ml.mc.graph import walk_layers
from reviewer.ml.mc.plan import cached, make_plan, resolve_method


def _multiply_adds(model):
    """Multiply-adds per example of the Dense and convolution layers of `model`."""
    kinds = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
    total = 0
    for layer in walk_layers(model):
        if isinstance(layer, kinds):
            # each output element costs one multiply-add per kernel entry feeding it
            total += math.prod(layer.output.shape[1:]) * math.prod(layer.kernel.shape[:-1])
    return total


def count_flops_per_image(model, T, method="auto") -> int:
    """FLOPs (2 x multiply-adds) one image costs on `method`'s path: prefix once + T x the rest.

    The fast path does the same arithmetic as the prefix path (its wide matmul is T Dense
    passes); building the thinned kernels is shared by a batch and not counted.
    """
    plan = cached(model, "plan", make_plan)
    method = resolve_method(plan, method, per_image_masks=False)
    if method == "full":
        return 2 * T * _multiply_adds(model)
    prefix = _multiply_adds(plan.prefix) if plan.prefix is not None else 0
    return 2 * (prefix + T * _multiply_adds(plan.suffix))


# --- for benchmarks: the machine's reachable matmul speed, measured the same way -------------


def widest_dense_product(model, T: int, batch_size: int) -> tuple[int, int, int]:
    """Shape (N, D, T·units) of the fast path's main product: the widest Dense layer, thinned."""
    dense = [x for x in model.layers if isinstance(x, keras.layers.Dense)]
    widest = max(dense, key=lambda d: int(np.prod(d.kernel.shape)))
    d, units = widest.kernel.shape
    return batch_size, int(d), T * int(units)


def matmul_timer(n: int, d: int, width: int, *, repeats: int):
    """A function that runs ``repeats`` compiled [n, d] x [d, width] float32 products."""
    a = tf.random.stateless_normal([n, d], [1, 2])
    b = tf.random.stateless_normal([d, width], [3, 4])
    matmul = tf.function(lambda a, b: tf.matmul(a, b))
    return lambda: [matmul(a, b).numpy() for _ in range(repeats)]


def thread_settings() -> tuple[int, int]:
    """TensorFlow's (intra-op, inter-op) thread settings; 0 means its default (all cores)."""
    return (
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
    )


def cpu_allocator() -> str:
    """Where TensorFlow's CPU tensors come from: "BFC" (kept and reused, reviewer's default)
    or "malloc" (TF_CPU_ALLOCATOR_USE_BFC=false: large buffers mapped fresh each time).
    Read as TensorFlow reads it: only "true" or "1", in any case and unpadded, turns it on
    (not config.TRUE's "yes" or "on")."""
    on = os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").lower() in ("true", "1")
    return "BFC" if on else "malloc"
