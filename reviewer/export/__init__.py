"""Export: the human-reviewed labels as a data set for retraining (``reviewer export``).

`export_dataset` (:mod:`reviewer.export.dataset`) decides each item's label and writes the data
set; :mod:`reviewer.export.manifest` describes it, :mod:`reviewer.export.files` puts it on disk
atomically.
"""

from reviewer.export.dataset import (
    SINCE_CHOICES,
    ExportResult,
    discard_export,
    export_dataset,
    finish_export,
    prepare_export,
)
from reviewer.export.files import ExportError

__all__ = [
    "SINCE_CHOICES",
    "ExportError",
    "ExportResult",
    "discard_export",
    "export_dataset",
    "finish_export",
    "prepare_export",
]
