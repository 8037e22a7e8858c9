"""Ingest: files, folders, a labels CSV or one upload -> stored images and ``images`` rows.

`run_ingest` (``reviewer ingest``) resolves the inputs (:mod:`reviewer.ingest.sources`), then
validates, stores and commits them a batch at a time (:mod:`reviewer.ingest.rows`, which the
upload API uses for one image too). What a run reports is :mod:`reviewer.ingest.report`.
"""

from reviewer.ingest.report import IngestError, IngestReport
from reviewer.ingest.run import run_ingest

__all__ = ["IngestError", "IngestReport", "run_ingest"]
