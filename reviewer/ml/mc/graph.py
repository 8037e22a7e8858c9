"""Reading a Keras model's layer graph: its layers (nested ones too), the node each layer is
called at, and the one refusal every graph walk shares (subclassed models have no graph)."""

from __future__ import annotations

import keras
from keras.src.models.functional import Functional  # not exported publicly


def walk_layers(model):
    """Every layer of `model`, nested models' layers included (depth first, in order)."""
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from walk_layers(layer)


def graph_nodes(model):
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


def single_input(nodes, layer):
    """The one tensor `layer` is called on in the graph of `nodes`, or None."""
    node = nodes.get(id(layer))
    return node.input_tensors[0] if node is not None and len(node.input_tensors) == 1 else None


def require_graph_model(model, consequence):
    if not isinstance(model, keras.Sequential | Functional):
        raise ValueError(
            f"model {model.name!r} is a subclassed model ({type(model).__name__}), not "
            f"Sequential or functional: its layer graph is unknown, so it {consequence}"
        )


def last_dense(model):
    """The model's last top-level Dense layer (its input is the penultimate features), or None."""
    return next((x for x in reversed(model.layers) if isinstance(x, keras.layers.Dense)), None)
