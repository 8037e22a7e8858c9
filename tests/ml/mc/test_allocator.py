"""Sampling reuses TensorFlow's memory from batch to batch instead of page-faulting a fresh
mapping of its thinned kernels in every time (reviewer.ml.mc turns on the BFC allocator)."""

import json
import os
import subprocess
import sys

MEASURE = """
import json, resource, statistics
import numpy as np
from reviewer.ml import mc
model = mc.build_default_model(seed=0)
x = np.random.default_rng(0).random((256, 28, 28, 1), dtype=np.float32)
faults = []
for _ in range(7):  # the first: tracing and the allocator's growth, which settles in a few
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    mc.sample(model, x, 50)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"faults_per_batch": statistics.median(faults[2:])}))
"""


def _faults_per_batch(**env) -> float:
    """Minor page faults of a batch of 256 at T = 50 once warm (median of 5), in a fresh
    interpreter: the allocator is chosen when TensorFlow starts."""
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"} | env
    out = subprocess.run(
        [sys.executable, "-c", MEASURE], env=environ, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])["faults_per_batch"]


def test_a_batch_reuses_memory_and_an_operators_setting_wins():
    # 236 MB of thinned kernels a batch: 57,600 pages of 4 KiB if mapped fresh each time.
    assert _faults_per_batch() < 2_000
    assert _faults_per_batch(TF_CPU_ALLOCATOR_USE_BFC="false") > 20_000  # malloc's mappings
