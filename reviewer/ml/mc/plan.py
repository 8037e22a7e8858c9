"""The sampling plan of a model: where the graph can be cut at the first dropout (the
deterministic prefix runs once per image) and whether the rest is a chain of dropout-fed Dense
layers (the fast path: T thinned kernels, one wide matrix multiply). Plans are cached on the
model object."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import keras

from reviewer.ml.mc.graph import graph_nodes, require_graph_model, single_input, walk_layers
from reviewer.ml.mc.layers import MCDropout

logger = logging.getLogger("reviewer.ml.mc")

METHODS = ("auto", "fast", "prefix", "full")
CACHE_ATTR = "_reviewer_mc_cache"


@dataclass
class Thinned:
    """An MCDropout feeding a Dense layer: applied as T thinned copies of the kernel."""

    rate: float
    dense: keras.layers.Dense


@dataclass
class Plan:
    mc_layers: list
    prefix: keras.Model | None = None  # None: the cut is at the model's input
    suffix: keras.Model | None = None  # None: the graph cannot be cut (why_not_prefix says why)
    fast_steps: list | None = None  # None: no fast path (why_not_fast says why)
    why_not_prefix: str | None = None
    why_not_fast: str | None = None
    functions: dict = field(default_factory=dict)  # compiled tf.functions, built on first use


def cached(model, key, build):
    # vars() bypasses Keras' attribute tracking, which would adopt the sub-models as layers.
    cache = vars(model).setdefault(CACHE_ATTR, {})
    if key not in cache:
        cache[key] = build(model)
    return cache[key]


def make_plan(model) -> Plan:
    require_graph_model(model, "cannot be sampled")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r} must have exactly one input and one output")
    mc_layers = [x for x in walk_layers(model) if isinstance(x, MCDropout) and x.rate > 0]
    if not mc_layers:
        raise ValueError(
            f"model {model.name!r} has no MCDropout layer, so its samples would all be equal; "
            "convert it with to_mc_model first"
        )
    plan = Plan(mc_layers)
    layers = [x for x in model.layers if not isinstance(x, keras.layers.InputLayer)]
    first = next((i for i, x in enumerate(layers) if isinstance(x, MCDropout)), None)
    nodes = graph_nodes(model)
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
    cut = single_input(nodes, dropout)
    if cut is None:
        return f"dropout {dropout.name!r} is shared or takes several inputs"
    try:
        plan.suffix = keras.Model(cut, model.outputs[0])
    except ValueError as exc:  # a branch bypasses the dropout
        return f"the graph cannot be cut at {dropout.name!r} ({exc})"
    if cut is not model.inputs[0]:
        plan.prefix = keras.Model(model.inputs[0], cut)
        if any(isinstance(x, MCDropout) for x in walk_layers(plan.prefix)):
            plan.suffix = plan.prefix = None
            return f"a nested model before {dropout.name!r} contains dropout"
    return None


def _fast_steps(plan, model, nodes, chain):
    """Turn the layers after the cut into fast-path steps; returns why not, or None."""
    ends = [nodes[id(x)].output_tensors if nodes.get(id(x)) else None for x in chain]
    for end, layer in zip(ends, chain[1:], strict=False):
        if end is None or single_input(nodes, layer) is not end[0]:
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
                and len(single_input(nodes, layer).shape) == 2
            )
            if not plain_dense:
                return f"dropout {pending.name!r} does not feed a Dense layer on flat inputs"
            steps.append(Thinned(pending.rate, layer))
            pending = None
        elif isinstance(layer, keras.Model) and any(
            isinstance(x, MCDropout) for x in walk_layers(layer)
        ):
            return f"nested model {layer.name!r} contains dropout"
        else:
            steps.append(layer)
    if pending is not None:
        return f"dropout {pending.name!r} is the model's last layer"
    plan.fast_steps = steps
    return None


def resolve_method(plan, method, per_image_masks):
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
