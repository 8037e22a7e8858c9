"""Monte-Carlo dropout for Keras models: the only module of reviewer that imports TensorFlow.

It owns the `MCDropout` layer (dropout that stays on at inference), the default digit
classifier, conversion of any Sequential or functional Keras model into MC mode, loading,
training, deterministic penultimate-layer `features`, and sampling of `samples` [T, N, K].
Sampling splits the graph at the first dropout: the deterministic prefix runs once per image
and only the rest runs T times, inside compiled TensorFlow functions. Where each dropout feeds
a Dense layer, T thinned kernels drawn once per batch turn the T passes into one wide matrix
multiply (DESIGN.md, "How sampling stays fast"). Graphs that cannot be split fall back to T
full passes. Plans and compiled functions are cached on the model object.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import math
import os
from dataclasses import dataclass, field

# TensorFlow's C++ start-up chatter (no CUDA driver, CPU features) is noise for our users;
# an operator who wants it sets TF_CPP_MIN_LOG_LEVEL themselves.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.src.models.functional import Functional  # noqa: E402 - not exported publicly

logger = logging.getLogger(__name__)

METHODS = ("auto", "fast", "prefix", "full")
# Largest working set of one chunk of samples: the thinned kernels [D, t·units] of the fast
# path, or the tiled activations [t·N, ...] of the prefix/full paths.
CHUNK_BUDGET_BYTES = 256 * 2**20
_FLOAT_BYTES = 4
_CACHE_ATTR = "_reviewer_mc_cache"

# Set while tracing `features`: MCDropout then acts as the identity.
_dropout_off = contextvars.ContextVar("reviewer_mc_dropout_off", default=False)
# Set while tracing a shared-masks pass (`sample(shared_masks=True)`): MCDropout draws one mask
# for the whole batch, its noise shape 1 on the batch axis.
_one_mask_per_batch = contextvars.ContextVar("reviewer_mc_one_mask_per_batch", default=False)


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
        if self.rate == 0.0 or _dropout_off.get():
            return inputs
        noise_shape = self.noise_shape
        if _one_mask_per_batch.get():
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


# ---------------------------------------------------------------- conversion and loading


def _walk_layers(model):
    """Every layer of `model`, nested models' layers included (depth first, in order)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _walk_layers(layer)


def _graph_nodes(model):
    """Map id(layer) -> the node (call) of that layer in `model`'s own graph; None if shared.

    `layer.input` reads a layer's first call, which can belong to another graph: a loaded
    Sequential calls its layers again each time one is added. So walk back from the outputs.
    """
    nodes, stack, seen = {}, list(model.outputs), set()
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        layer, node_index, _ = tensor._keras_history
        node = layer._inbound_nodes[node_index]
        nodes[id(layer)] = node if nodes.get(id(layer), node) is node else None
        stack.extend(node.input_tensors)
    return nodes


def _single_input(nodes, layer):
    """The one tensor `layer` is called on in the graph of `nodes`, or None."""
    node = nodes.get(id(layer))
    return node.input_tensors[0] if node is not None and len(node.input_tensors) == 1 else None


def _require_graph_model(model, consequence):
    if not isinstance(model, keras.Sequential | Functional):
        raise ValueError(
            f"model {model.name!r} is a subclassed model ({type(model).__name__}), not "
            f"Sequential or functional: its layer graph is unknown, so it {consequence}"
        )


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
    _require_graph_model(model, "cannot be converted")
    if not any(isinstance(x, keras.layers.Dropout | MCDropout) for x in _walk_layers(model)):
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
    mc_layers = [x for x in _walk_layers(model) if isinstance(x, MCDropout)]
    _reseed(mc_layers, np.random.SeedSequence(seed))  # they were seeded when built
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


# ---------------------------------------------------------------- the sampling plan


@dataclass
class _Thinned:
    """An MCDropout feeding a Dense layer: applied as T thinned copies of the kernel."""

    rate: float
    dense: keras.layers.Dense


@dataclass
class _Plan:
    mc_layers: list
    prefix: keras.Model | None = None  # None: the cut is at the model's input
    suffix: keras.Model | None = None  # None: the graph cannot be cut (why_not_prefix says why)
    fast_steps: list | None = None  # None: no fast path (why_not_fast says why)
    why_not_prefix: str | None = None
    why_not_fast: str | None = None
    functions: dict = field(default_factory=dict)  # compiled tf.functions, built on first use


def _cached(model, key, build):
    # vars() bypasses Keras' attribute tracking, which would adopt the sub-models as layers.
    cache = vars(model).setdefault(_CACHE_ATTR, {})
    if key not in cache:
        cache[key] = build(model)
    return cache[key]


def _make_plan(model) -> _Plan:
    _require_graph_model(model, "cannot be sampled")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} must have exactly one input and one output")
    mc_layers = [x for x in _walk_layers(model) if isinstance(x, MCDropout) and x.rate > 0]
    if not mc_layers:
        raise ValueError(
            f"model {model.name!r} has no MCDropout layer, so its samples would all be equal; "
            "convert it with to_mc_model first"
        )
    plan = _Plan(mc_layers)
    layers = [x for x in model.layers if not isinstance(x, keras.layers.InputLayer)]
    first = next((i for i, x in enumerate(layers) if isinstance(x, MCDropout)), None)
    nodes = _graph_nodes(model)
    plan.why_not_prefix = _cut(plan, model, nodes, layers, first)
    if plan.why_not_prefix:
        plan.why_not_fast = plan.why_not_prefix
        logger.info(
            "model %r will be sampled with T full passes: %s", model.name, plan.why_not_prefix
        )
    else:
        plan.why_not_fast = _fast_steps(plan, model, nodes, layers[first:])
        if plan.why_not_fast:
            logger.info("model %r has no fast sampling path: %s", model.name, plan.why_not_fast)
    return plan


def _cut(plan, model, nodes, layers, first):
    """Split the graph at the first top-level MCDropout; returns why not, or None."""
    if first is None:
        return "its dropout layers are all inside nested models"
    dropout = layers[first]
    cut = _single_input(nodes, dropout)
    if cut is None:
        return f"dropout {dropout.name!r} is shared or takes several inputs"
    try:
        plan.suffix = keras.Model(cut, model.outputs[0])
    except ValueError as exc:  # a branch bypasses the dropout
        return f"the graph cannot be cut at {dropout.name!r} ({exc})"
    if cut is not model.inputs[0]:
        plan.prefix = keras.Model(model.inputs[0], cut)
        if any(isinstance(x, MCDropout) for x in _walk_layers(plan.prefix)):
            plan.suffix = plan.prefix = None
            return f"a nested model before {dropout.name!r} contains dropout"
    return None


def _fast_steps(plan, model, nodes, chain):
    """Turn the layers after the cut into fast-path steps; returns why not, or None."""
    ends = [nodes[id(x)].output_tensors if nodes.get(id(x)) else None for x in chain]
    for end, layer in zip(ends, chain[1:], strict=False):
        if end is None or _single_input(nodes, layer) is not end[0]:
            return f"the layers after {chain[0].name!r} are not a single chain"
    if ends[-1] is None or ends[-1][0] is not model.outputs[0]:
        return f"the layers after {chain[0].name!r} are not a single chain"
    steps, pending = [], None  # pending: an MCDropout still waiting for its Dense layer
    for layer in chain:
        if isinstance(layer, MCDropout):
            if pending is not None or layer.noise_shape is not None:
                return f"dropout {layer.name!r} does not feed a Dense layer elementwise"
            pending = layer
        elif pending is not None and isinstance(layer, keras.layers.Flatten):
            steps.append(layer)  # masking flattened inputs is the same as masking them before
        elif pending is not None:
            plain_dense = (
                isinstance(layer, keras.layers.Dense)
                and layer.quantization_mode is None
                and len(_single_input(nodes, layer).shape) == 2
            )
            if not plain_dense:
                return f"dropout {pending.name!r} does not feed a Dense layer on flat inputs"
            steps.append(_Thinned(pending.rate, layer))
            pending = None
        elif isinstance(layer, keras.Model) and any(
            isinstance(x, MCDropout) for x in _walk_layers(layer)
        ):
            return f"nested model {layer.name!r} contains dropout"
        else:
            steps.append(layer)
    if pending is not None:
        return f"dropout {pending.name!r} is the model's last layer"
    plan.fast_steps = steps
    return None


def _resolve_method(plan, method, per_image_masks):
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        if plan.fast_steps is not None and not per_image_masks:
            return "fast"
        return "full" if plan.why_not_prefix else "prefix"
    if method == "fast" and per_image_masks:
        raise ValueError(
            "the fast path shares masks within a batch; per_image_masks needs "
            "method 'prefix' or 'full'"
        )
    if method == "fast" and plan.why_not_fast:
        raise ValueError(f"no fast sampling path for this model: {plan.why_not_fast}")
    if method == "prefix" and plan.why_not_prefix:
        raise ValueError(f"the prefix cannot be cached for this model: {plan.why_not_prefix}")
    return method


# ---------------------------------------------------------------- compiled pieces


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


def _spec(shape):
    return tf.TensorSpec([None, *shape[1:]], tf.float32)


def _fast_function(plan):
    steps = plan.fast_steps
    n_thinned = sum(isinstance(s, _Thinned) for s in steps)

    def run(h, seeds, t):
        shared, k = True, 0  # shared: h has no sample axis yet
        for step in steps:
            if isinstance(step, _Thinned):
                h = _thinned_dense(h, step, seeds[k], t, shared)
                shared, k = False, k + 1
            else:
                h = step(h, training=False) if shared else _per_sample(step, h)
        return h

    signature = [
        _spec(plan.suffix.inputs[0].shape),
        tf.TensorSpec([n_thinned, 2], tf.int64),
        tf.TensorSpec([], tf.int32),
    ]
    return tf.function(run, input_signature=signature)


def _repeat_function(net):
    """t stochastic passes of `net` over h [N, ...] as one batch of t·N rows -> [t, N, K]."""

    def run(h, t):
        tiled = tf.tile(h, tf.concat([[t], tf.ones([tf.rank(h) - 1], tf.int32)], 0))
        y = net(tiled, training=False)
        return tf.reshape(y, [t, -1, y.shape[-1]])

    return tf.function(
        run, input_signature=[_spec(net.inputs[0].shape), tf.TensorSpec([], tf.int32)]
    )


def _one_pass_one_mask(net):
    """One stochastic pass of `net` over h [N, ...] with one mask for all N rows -> [1, N, K]."""

    def run(h):
        token = _one_mask_per_batch.set(True)  # read while tracing: the graph keeps it
        try:
            return net(h, training=False)[None]
        finally:
            _one_mask_per_batch.reset(token)

    return tf.function(run, input_signature=[_spec(net.inputs[0].shape)])


def _function(plan, key, build):
    if key not in plan.functions:
        plan.functions[key] = build()
    return plan.functions[key]


# ---------------------------------------------------------------- sampling


def _as_batch(model, images):
    x = np.asarray(images, dtype=np.float32)
    expected = tuple(model.inputs[0].shape[1:])
    fits = x.ndim == len(expected) + 1 and all(
        e is None or e == s for e, s in zip(expected, x.shape[1:], strict=True)
    )
    if not fits:
        raise ValueError(f"images have shape {x.shape}; the model expects [N, *{expected}]")
    return x


def _reseed(mc_layers, seed_seq):
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
    for layer in _walk_layers(model):
        with contextlib.suppress(AttributeError, ValueError):
            for out in keras.tree.flatten(layer.output):
                widest = max(widest, math.prod(d or 1 for d in out.shape[1:]))
    return widest


def _sample_fast(plan, fn, h, T, seed_seq):
    thinned = [s.dense for s in plan.fast_steps if isinstance(s, _Thinned)]
    kernel_bytes = _FLOAT_BYTES * max(math.prod(d.kernel.shape) for d in thinned)
    sizes = _chunks(T, CHUNK_BUDGET_BYTES // kernel_bytes)
    seeds = seed_seq.generate_state(2 * len(thinned) * len(sizes))
    seeds = seeds.astype(np.int64).reshape(len(sizes), len(thinned), 2)
    return [fn(h, s, tf.constant(t, tf.int32)) for s, t in zip(seeds, sizes, strict=True)]


def _sample_repeated(fn, h, T, floats_per_example):
    per_sample = 2 * _FLOAT_BYTES * floats_per_example * h.shape[0]  # a layer's input + output
    sizes = _chunks(T, CHUNK_BUDGET_BYTES // per_sample)
    return [fn(h, tf.constant(t, tf.int32)) for t in sizes]


def _batch_runner(model, plan, method, *, one_mask_per_batch=False):
    """A function (batch [n, ...], T, SeedSequence) -> chunks [t, n, K] of `method`'s samples.
    ``one_mask_per_batch`` (prefix and full): T passes, each with one mask for the batch."""
    net, prefix = (model, None) if method == "full" else (plan.suffix, plan.prefix)
    if prefix is None:
        prefix_fn = tf.identity
    else:
        prefix_fn = _function(
            plan,
            "cached prefix",
            lambda: tf.function(
                lambda x: prefix(x, training=False),
                input_signature=[_spec(model.inputs[0].shape)],
            ),
        )
    if method == "fast":
        fn = _function(plan, "fast", lambda: _fast_function(plan))
        return lambda batch, T, seq: _sample_fast(plan, fn, prefix_fn(batch), T, seq)
    if one_mask_per_batch:
        fn = _function(plan, f"{method}, one mask", lambda: _one_pass_one_mask(net))

        def one_mask_passes(batch, T, seq):
            h = prefix_fn(batch)
            return [fn(h) for _ in range(T)]

        return one_mask_passes
    fn = _function(plan, method, lambda: _repeat_function(net))
    floats = _floats_per_example(net)
    return lambda batch, T, seq: _sample_repeated(fn, prefix_fn(batch), T, floats)


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
) -> np.ndarray:
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

    Returns
    -------
    samples : float32 array [T, N, K].
    """
    if T < 1 or batch_size < 1:
        raise ValueError(f"T and batch_size must be positive, got T={T}, batch_size={batch_size}")
    if shared_masks and per_image_masks:
        raise ValueError("shared_masks and per_image_masks exclude each other")
    plan = _cached(model, "plan", _make_plan)
    method = _resolve_method(plan, method, per_image_masks)
    x = _as_batch(model, images)
    seed_seq = np.random.SeedSequence(seed)
    layer_seq = seed_seq.spawn(1)[0]
    run_batch = _batch_runner(model, plan, method, one_mask_per_batch=shared_masks)
    batch_seqs = seed_seq.spawn(math.ceil(len(x) / batch_size))
    if shared_masks:  # every batch starts from the same seeds, so draws the same T masks
        batch_seqs = [batch_seqs[0]] * len(batch_seqs)
    samples = np.empty((T, len(x), model.outputs[0].shape[-1]), np.float32)
    for start, batch_seq in zip(range(0, len(x), batch_size), batch_seqs, strict=True):
        # The other paths draw masks from the MCDropout layers' own generators: seeded once,
        # or (shared masks) restarted for every batch so each draws the same T masks.
        if method != "fast" and (start == 0 or shared_masks):
            _reseed(plan.mc_layers, layer_seq)
        parts = run_batch(tf.constant(x[start : start + batch_size]), T, batch_seq)
        samples[:, start : start + batch_size] = np.concatenate([p.numpy() for p in parts])
    return samples


def classic_sample(model, images, T, *, batch_size=1000) -> np.ndarray:
    """The tutorial recipe, the benchmark baseline: T calls of `model.predict` -> [T, N, K].

    Dropout samples only because the model's MCDropout layers are always on.
    """
    _cached(model, "plan", _make_plan)  # refuses a model without MCDropout
    x = _as_batch(model, images)
    runs = [model.predict(x, batch_size=batch_size, verbose=0) for _ in range(T)]
    return np.stack(runs).astype(np.float32)


# ---------------------------------------------------------------- features and cost


@contextlib.contextmanager
def _dropout_disabled():
    token = _dropout_off.set(True)
    try:
        yield
    finally:
        _dropout_off.reset(token)


def _features_function(model):
    _require_graph_model(model, "has no features to read")
    dense = next((x for x in reversed(model.layers) if isinstance(x, keras.layers.Dense)), None)
    if dense is None:
        raise ValueError(f"model {model.name!r} has no top-level Dense layer to read features of")
    flat = _single_input(_graph_nodes(model), dense)
    if flat is None:
        raise ValueError(f"layer {dense.name!r} is shared or takes several inputs")
    net = keras.Model(model.inputs[0], flat)

    def run(x):
        with _dropout_disabled():  # read at trace time: the traced graph has no dropout
            return net(x, training=False)

    return tf.function(run, input_signature=[_spec(model.inputs[0].shape)]), net.outputs[0].shape


def features(model, images, *, batch_size=256) -> np.ndarray:
    """Deterministic features [N, D]: the input of the last Dense layer, dropout off."""
    fn, shape = _cached(model, "features", _features_function)
    x = _as_batch(model, images)
    parts = [fn(x[i : i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
    width = math.prod(shape[1:])  # a non-flat input to the last Dense is flattened
    return (
        np.concatenate(parts).reshape(len(x), width) if parts else np.empty((0, width), np.float32)
    )


def _multiply_adds(model):
    """Multiply-adds per example of the Dense and convolution layers of `model`."""
    kinds = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
    total = 0
    for layer in _walk_layers(model):
        if isinstance(layer, kinds):
            # each output element costs one multiply-add per kernel entry feeding it
            total += math.prod(layer.output.shape[1:]) * math.prod(layer.kernel.shape[:-1])
    return total


def count_flops_per_image(model, T, method="auto") -> int:
    """FLOPs (2 x multiply-adds) one image costs on `method`'s path: prefix once + T x the rest.

    The fast path does the same arithmetic as the prefix path (its wide matmul is T Dense
    passes); building the thinned kernels is shared by a batch and not counted.
    """
    plan = _cached(model, "plan", _make_plan)
    method = _resolve_method(plan, method, per_image_masks=False)
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
