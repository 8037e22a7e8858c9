"""The worker's sampler: each version's model loaded once, sampled through reviewer.ml.mc.

TensorFlow loads lazily, on the first batch. A test passes any object with the same methods
instead.
"""

from __future__ import annotations

import gc
import logging

import numpy as np

from reviewer.core.schema import ModelVersion
from reviewer.core.versions import version_name
from reviewer.training import registry

logger = logging.getLogger(__name__)


class MCSampler:
    """The real sampler: each version's model (and card) is loaded once, through reviewer.ml.mc.

    A test passes any object with the same ``sample`` and ``features`` methods instead.
    """

    def __init__(self, loader=None):
        self._loader = loader
        self._models: dict[int, object] = {}
        self._frozen: int | None = None  # the version whose objects gc.freeze() holds

    def _model(self, version: ModelVersion):
        if version.id not in self._models:
            from reviewer.ml import mc

            load = self._loader or mc.load_model
            self._models, self._frozen = {}, None  # the last model goes before the next loads
            gc.unfreeze()
            gc.collect()
            self._models = {
                version.id: load(registry.version_folder(version.path) / registry.MODEL_FILE)
            }
            logger.info("loaded model %s", version_name(version))
        return self._models[version.id]

    def _freeze(self, version: ModelVersion) -> None:
        """After a version's first batch: TensorFlow, the model and its traced functions are
        half a million objects that live as long as the model; frozen, Python's full
        collections stop walking them (one took 0.3 s every few passes, BENCHMARKS.md)."""
        if self._frozen != version.id:
            gc.collect()
            gc.freeze()
            self._frozen = version.id

    def sample(self, version: ModelVersion, images: np.ndarray, T: int, *, shared_masks=False):
        """[T, N, K]; ``shared_masks``: sample t of every image from the same mask t (BatchBALD)."""
        from reviewer.ml import mc

        samples = mc.sample(self._model(version), images, T, shared_masks=shared_masks)
        self._freeze(version)
        return samples

    def sample_with_features(self, version: ModelVersion, images: np.ndarray, T: int):
        """(samples [T, N, K], features [N, D]) in one pass over the model's prefix."""
        from reviewer.ml import mc

        found = mc.sample(self._model(version), images, T, with_features=True)
        self._freeze(version)
        return found

    def features(self, version: ModelVersion, images: np.ndarray) -> np.ndarray:
        from reviewer.ml import mc

        return mc.features(self._model(version), images)
