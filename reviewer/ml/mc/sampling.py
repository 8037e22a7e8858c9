"""Drawing `samples` [T, N, K]: batches, chunks sized to a memory budget, seeds, and the
classic recipe (T calls of `model.predict`) the benchmarks compare against."""

from __future__ import annotations

import contextlib
import math

import keras
import numpy as np
import tensorflow as tf

from reviewer.ml.mc.compiled import (
    compiled,
    fast_function,
    features_function,
    one_pass_one_mask,
    repeat_function,
    spec,
)
from reviewer.ml.mc.graph import walk_layers
from reviewer.ml.mc.plan import Thinned, cached, make_plan, resolve_method

# Largest working set of one chunk of samples: the thinned kernels [D, t·units] of the fast
# path, or the tiled activations [t·N, ...] of the prefix/full paths.
CHUNK_BUDGET_BYTES = 256 * 2**20
FLOAT_BYTES = 4


def as_batch(model, images):
    x = np.asarray(images, dtype=np.float32)
    expected = tuple(model.inputs[0].shape[1:])
    fits = x.ndim == len(expected) + 1 and all(
        e is None or e == s for e, s in zip(expected, x.shape[1:], strict=True)
    )
    if not fits:
        raise ValueError(f"images have shape {x.shape}; the model expects [N, *{expected}]")
    return x


def reseed(mc_layers, seed_seq):
    """Restart every MCDropout's generator from a numpy SeedSequence."""
    states = seed_seq.generate_state(len(mc_layers))
    for layer, state in zip(mc_layers, states, strict=True):
        layer.seed_generator.state.assign(np.array([state, 0], dtype=np.int64))


def _chunks(total, most):
    """Split `total` samples into near-equal chunks of at most `most` each."""
    n = math.ceil(total / max(1, most))
    return [len(c) for c in np.array_split(np.arange(total), n)]


def _floats_per_example(model):
    """The widest activation of `model` per example: sizes the prefix/full chunks."""
    widest = math.prod(d or 1 for d in model.inputs[0].shape[1:])
    for layer in walk_layers(model):
        with contextlib.suppress(AttributeError, ValueError):
            for out in keras.tree.flatten(layer.output):
                widest = max(widest, math.prod(d or 1 for d in out.shape[1:]))
    return widest


def _sample_fast(plan, fn, h, T, seed_seq):
    thinned = [s.dense for s in plan.fast_steps if isinstance(s, Thinned)]
    kernel_bytes = FLOAT_BYTES * max(math.prod(d.kernel.shape) for d in thinned)
    sizes = _chunks(T, CHUNK_BUDGET_BYTES // kernel_bytes)
    seeds = seed_seq.generate_state(2 * len(thinned) * len(sizes))
    seeds = seeds.astype(np.int64).reshape(len(sizes), len(thinned), 2)
    return [fn(h, s, tf.constant(t, tf.int32)) for s, t in zip(seeds, sizes, strict=True)]


def _sample_repeated(fn, h, T, floats_per_example):
    per_sample = 2 * FLOAT_BYTES * floats_per_example * h.shape[0]  # a layer's input + output
    sizes = _chunks(T, CHUNK_BUDGET_BYTES // per_sample)
    return [fn(h, tf.constant(t, tf.int32)) for t in sizes]


def _batch_runner(model, plan, method, *, one_mask_per_batch=False):
    """A function (batch [n, ...], T, SeedSequence) -> chunks [t, n, K] of `method`'s samples.
    ``one_mask_per_batch`` (prefix and full): T passes, each with one mask for the batch."""
    net, prefix = (model, None) if method == "full" else (plan.suffix, plan.prefix)
    if prefix is None:
        prefix_fn = tf.identity
    else:
        prefix_fn = compiled(
            plan,
            "cached prefix",
            lambda: tf.function(
                lambda x: prefix(x, training=False),
                input_signature=[spec(model.inputs[0].shape)],
            ),
        )

    def features_of(h, with_features):
        """The OOD features of the prefix output h (None on the full path: no prefix)."""
        if not with_features or method == "full":
            return None
        shape = plan.suffix.inputs[0].shape
        return compiled(plan, "features", lambda: features_function(shape))(h).numpy()

    if method == "fast":
        fn = compiled(plan, "fast", lambda: fast_function(plan))

        def fast(batch, T, seq, *, with_features=False):
            h = prefix_fn(batch)
            return _sample_fast(plan, fn, h, T, seq), features_of(h, with_features)

        return fast
    if one_mask_per_batch:
        fn = compiled(plan, f"{method}, one mask", lambda: one_pass_one_mask(net))

        def one_mask_passes(batch, T, seq, *, with_features=False):
            h = prefix_fn(batch)
            return [fn(h) for _ in range(T)], features_of(h, with_features)

        return one_mask_passes
    fn = compiled(plan, method, lambda: repeat_function(net))
    floats = _floats_per_example(net)

    def repeated(batch, T, seq, *, with_features=False):
        h = prefix_fn(batch)
        return _sample_repeated(fn, h, T, floats), features_of(h, with_features)

    return repeated


def sample(
    model,
    images,
    T,
    *,
    seed=None,
    batch_size=256,
    per_image_masks=False,
    shared_masks=False,
    method="auto",
    with_features=False,
):
    """Draw T MC-dropout samples of the softmax output for each image.

    Parameters
    ----------
    model : a Sequential/functional model with MCDropout layers (see `to_mc_model`).
    images : array [N, *input_shape], already normalised as the model expects.
    T : number of samples per image.
    seed : int or None; the same seed (with the same batch_size) gives identical samples.
    per_image_masks : draw independent masks per (image, sample) instead of sharing each
        sample's masks across the images of a batch (the fast path shares them).
    shared_masks : sample t of EVERY image comes from the same network (mask t), across
        batches and on every path: what a joint over several items (BatchBALD) needs. Without
        it, the fast path shares masks only within a batch and the other paths not at all.
    method : "auto" (fast where the structure allows, else prefix, else full), "fast",
        "prefix" (deterministic prefix once, the rest T times) or "full" (T full passes).

    with_features : also return the OOD features (reviewer.ml.mc.features), read from the
        prefix output the samples came from (the full path reads them in a pass of their own).

    Returns
    -------
    samples : float32 array [T, N, K]; with ``with_features``, (samples, features [N, D]).
    """
    if T < 1 or batch_size < 1:
        raise ValueError(f"T and batch_size must be positive, got T={T}, batch_size={batch_size}")
    if shared_masks and per_image_masks:
        raise ValueError("shared_masks and per_image_masks exclude each other")
    plan = cached(model, "plan", make_plan)
    method = resolve_method(plan, method, per_image_masks)
    x = as_batch(model, images)
    seed_seq = np.random.SeedSequence(seed)
    layer_seq = seed_seq.spawn(1)[0]
    run_batch = _batch_runner(model, plan, method, one_mask_per_batch=shared_masks)
    batch_seqs = seed_seq.spawn(math.ceil(len(x) / batch_size))
    if shared_masks:  # every batch starts from the same seeds, so draws the same T masks
        batch_seqs = [batch_seqs[0]] * len(batch_seqs)
    samples = np.empty((T, len(x), model.outputs[0].shape[-1]), np.float32)
    read = []  # the features of each batch, where the path read them from its prefix
    for start, batch_seq in zip(range(0, len(x), batch_size), batch_seqs, strict=True):
        # The other paths draw masks from the MCDropout layers' own generators: seeded once,
        # or (shared masks) restarted for every batch so each draws the same T masks.
        if method != "fast" and (start == 0 or shared_masks):
            reseed(plan.mc_layers, layer_seq)
        batch = tf.constant(x[start : start + batch_size])
        parts, features = run_batch(batch, T, batch_seq, with_features=with_features)
        samples[:, start : start + batch_size] = np.concatenate([p.numpy() for p in parts])
        read.append(features)
    return _with_features(model, x, samples, read, batch_size) if with_features else samples


def _with_features(model, x, samples, read, batch_size):
    """(samples, features): those the batches read from their prefix, else a pass of
    reviewer.ml.mc.features."""
    if read and all(f is not None for f in read):
        return samples, np.concatenate(read)
    from reviewer.ml.mc.features import features  # that module reads this one's as_batch

    return samples, features(model, x, batch_size=batch_size)


def classic_sample(model, images, T, *, batch_size=1000) -> np.ndarray:
    """The tutorial recipe, the benchmark baseline: T calls of `model.predict` -> [T, N, K].

    Dropout samples only because the model's MCDropout layers are always on.
    """
    cached(model, "plan", make_plan)  # refuses a model without MCDropout
    x = as_batch(model, images)
    runs = [model.predict(x, batch_size=batch_size, verbose=0) for _ in range(T)]
    return np.stack(runs).astype(np.float32)
