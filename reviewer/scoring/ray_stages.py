"""The stages a Ray Data rescoring runs on the cluster (reviewer.scoring.on_ray drives them):
`fetch_and_decode`, a task per batch that reads the images from the store and decodes them as
the version expects, and `Scorer`, an actor that loads the version's model (and OOD fit) once
and samples and summarises each batch with the worker's own code (reviewer.scoring.compute).
Nothing here touches the database; rows go back to the driver as JSON text. Ray itself is not
imported: these are plain functions and classes that Ray Data calls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from reviewer.core.objects import image_store
from reviewer.scoring import compute
from reviewer.training import registry


@dataclass(frozen=True)
class VersionView:
    """What the stages need of a model version (a row cannot travel to another process)."""

    id: int
    name: str
    version: int
    path: str
    classes: list
    input_spec: dict
    mc_samples: int

    @classmethod
    def of(cls, row) -> VersionView:
        fields = ("id", "name", "version", "path", "classes", "input_spec", "mc_samples")
        return cls(**{name: getattr(row, name) for name in fields})


@dataclass(frozen=True)
class Item:
    """A claimed image as compute.score_loaded reads it."""

    id: int
    path: str
    given_label: str | None


def _items(batch: dict) -> list[Item]:
    labels = [label or None for label in batch["given_label"]]
    return [
        Item(int(i), str(p), g) for i, p, g in zip(batch["id"], batch["path"], labels, strict=True)
    ]


def fetch_and_decode(
    batch: dict, *, version: VersionView, location, max_decoded_bytes: int
) -> dict:
    """Load a batch of rows (id, path, given_label) from the store at ``location``: the images
    that decode, with an empty failure, and those that do not, with the reason (a zero image)."""
    items = _items(batch)
    array, loaded, failures = compute.load_images(
        version, image_store(location), items, max_decoded_bytes=max_decoded_bytes
    )
    spec = version.input_spec
    images = np.zeros((len(items), spec["height"], spec["width"], spec["channels"]), np.float32)
    position = {item.id: k for k, item in enumerate(items)}
    for row, item in zip(array, loaded, strict=True):
        images[position[item.id]] = row
    return {
        "id": np.array([item.id for item in items], dtype=np.int64),
        "path": np.array([item.path for item in items], dtype=object),
        "given_label": np.array([item.given_label or "" for item in items], dtype=object),
        "image": images,
        "failure": np.array([failures.get(item.id, "") for item in items], dtype=object),
    }


class Scorer:
    """Samples and summarises batches with one version's model, loaded once per actor."""

    def __init__(self, version: VersionView, T: int, sampler_factory=None):
        from reviewer.scoring.sampler import MCSampler

        self.version, self.T = version, T
        self.sampler = (sampler_factory or MCSampler)()
        folder = registry.version_folder(version.path)  # this node's cached copy
        self.ood_fit = registry.read_ood_fit(folder, registry.read_card(folder))

    def __call__(self, batch: dict) -> dict:
        failed = np.array([bool(reason) for reason in batch["failure"]])
        items = [item for item, bad in zip(_items(batch), failed, strict=True) if not bad]
        images = batch["image"][~failed]
        rows = compute.score_loaded(self.sampler, self.version, self.ood_fit, images, items, self.T)
        return {
            "id": batch["id"],
            "row": np.array([json.dumps(rows.get(int(i))) for i in batch["id"]], dtype=object),
            "failure": batch["failure"],
        }
