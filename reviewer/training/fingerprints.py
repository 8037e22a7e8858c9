"""Fingerprints of training data: the sha256 of a file, and of a whole data set (its files'
relative paths and contents), as a model card records them (reviewer.training.registry)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_HASH_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_fingerprint(entries: Iterable[tuple[str, str]]) -> str:
    """sha256 over ``"<relative path>\\t<file sha256>\\n"`` lines sorted by relative path.

    ``entries`` are (relative POSIX path, sha256 of the file's bytes). Hashing contents, not
    sizes or times, makes the fingerprint stable across copies and sensitive to any change.
    """
    digest = hashlib.sha256()
    for relative, sha in sorted(entries):
        digest.update(f"{relative}\t{sha}\n".encode())
    return digest.hexdigest()
