"""Monte-Carlo dropout for Keras models: the only package of reviewer that imports TensorFlow.

Its modules: `layers` (the `MCDropout` layer), `graph` (reading a model's layer graph), `models`
(the default digit classifier, converting a model to MC mode, loading, training), `plan` (where
the graph is cut and whether the fast path applies), `compiled` (the tf.functions),
`sampling` (`sample` of `samples` [T, N, K], and the classic recipe), `features` (the prefix
features of the OOD score; the penultimate ones for comparisons) and `cost` (FLOPs and matmul
speed for the benchmarks). Sampling splits the graph at the first dropout: the deterministic
prefix runs once per image and only the rest runs T times; where each dropout feeds a Dense
layer, T thinned kernels drawn once per batch turn the T passes into one wide matrix multiply
(docs/architecture.md, "How sampling stays fast"). Graphs that cannot be split fall back to T
full passes. Arrays in, arrays out.
"""

import contextlib
import os
import sys

# TensorFlow's C++ start-up chatter (no CUDA driver, CPU features, even a failed cuInit that it
# logs as an error on a machine without a GPU) is noise for our users;
# `reviewer --tf-logs` (or TF_CPP_MIN_LOG_LEVEL set by the operator) shows it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's CPU tensors come from malloc by default, and glibc maps every buffer over 32 MiB
# fresh from the kernel and unmaps it when freed: a batch's thinned kernels (236 MB for the
# default model at T = 50) were page-faulted in, zeroed, on every batch. Its BFC allocator
# keeps and reuses the memory instead (BENCHMARKS.md, "Page faults"); an operator's own
# setting wins. Read when TensorFlow makes its CPU allocator, so set before it is imported.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


@contextlib.contextmanager
def _quiet_start_up():
    """The process's stderr (fd 2) to /dev/null while TensorFlow loads and finds its devices:
    its first lines are written before its log level is read. Kept when logs were asked for;
    a Python exception still propagates with its message."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") != "3":
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


with _quiet_start_up():
    import tensorflow as tf

    tf.config.list_physical_devices()  # the device probe (cuInit) logs here, once

from reviewer.ml.mc.cost import (  # noqa: E402
    count_flops_per_image,
    cpu_allocator,
    matmul_timer,
    thread_settings,
    widest_dense_product,
)
from reviewer.ml.mc.features import features, head_inputs  # noqa: E402
from reviewer.ml.mc.layers import MCDropout  # noqa: E402
from reviewer.ml.mc.models import (  # noqa: E402
    build_default_model,
    build_mobilenet_classifier,
    load_model,
    to_mc_model,
    train,
)
from reviewer.ml.mc.sampling import classic_sample, sample  # noqa: E402

__all__ = [
    "MCDropout",
    "build_default_model",
    "build_mobilenet_classifier",
    "classic_sample",
    "count_flops_per_image",
    "cpu_allocator",
    "features",
    "head_inputs",
    "load_model",
    "matmul_timer",
    "sample",
    "thread_settings",
    "to_mc_model",
    "train",
    "widest_dense_product",
]
