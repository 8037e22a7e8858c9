"""The worker's sampler keeps TensorFlow's long-lived objects out of Python's full collections
(gc.freeze after a version's first batch) and still lets go of a replaced version's model."""

import gc
import types
import weakref

import numpy as np

from reviewer.ml import mc
from reviewer.scoring.sampler import MCSampler


def test_the_model_is_frozen_after_its_first_batch_and_let_go_when_replaced(tmp_path):
    sampler = MCSampler(loader=lambda _path: mc.build_default_model(seed=0))
    images = np.zeros((4, 28, 28, 1), np.float32)
    first, second = (
        types.SimpleNamespace(id=i, name="m", version=i, path=str(tmp_path)) for i in (1, 2)
    )
    try:
        gc.unfreeze()
        samples, features = sampler.sample_with_features(first, images, 3)
        assert samples.shape == (3, 4, 10) and len(features) == 4
        frozen = gc.get_freeze_count()
        assert frozen > 10_000  # TensorFlow, the model, its traced functions
        assert sampler.sample(first, images, 3).shape == (3, 4, 10)
        assert gc.get_freeze_count() <= frozen  # frozen once per version, not at every batch
        replaced = weakref.ref(sampler._model(first))
        assert sampler.sample(second, images, 3).shape == (3, 4, 10)
        gc.collect()
        assert replaced() is None  # frozen, then thawed and collected when the next one came
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
