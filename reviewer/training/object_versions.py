"""Model versions on object storage (``REVIEWER_MODEL_DIR=s3://bucket/models``), and the local
cache every process loads them from.

Object stores have no atomic rename, so a version number is claimed with a create-only write
of ``<name>/<version>/.claim`` (S3's ``If-None-Match: *``: of two writers, one gets the number
and the other tries the next), the files follow and the card comes last: a version exists once
its ``card.json`` does, and a crash leaves at most a claimed number without a card (skipped).
A version never changes once its card is written, so a copy cached by URL never goes stale;
the cache is filled in a temporary folder renamed into place. No TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from reviewer.core import locations

CLAIM_FILE = ".claim"
CARD_FILE = "card.json"  # the registry's name for it (reviewer.training.registry)
CACHE_VARIABLE = "REVIEWER_MODEL_CACHE"
DEFAULT_CACHE = Path("~/.cache/reviewer/models")
CLAIM_TRIES = 100


def cache_root() -> Path:
    """Where versions from object storage are copied: ``REVIEWER_MODEL_CACHE`` or
    ``~/.cache/reviewer/models``."""
    return Path(os.environ.get(CACHE_VARIABLE) or DEFAULT_CACHE).expanduser()


def version_numbers(url: str, name: str) -> list[int]:
    """The numbers claimed under ``url``/name (with a card or not: a claim is never reused)."""
    fs, root = locations.filesystem(url)
    try:
        entries = fs.ls(f"{root}/{name}", detail=False)
    except FileNotFoundError:
        return []
    names = (entry.rstrip("/").rsplit("/", 1)[-1] for entry in entries)
    return sorted(int(n) for n in names if n.isdigit())


def write_version(url: str, name: str, card: dict, prepare) -> tuple[dict, str]:
    """Write a new version of ``name`` under ``url``: ``prepare(folder)`` writes its files in
    a local temporary folder, a number is claimed, the files are uploaded and the card with
    its number last. Returns (the card with its version, the version's URL)."""
    with tempfile.TemporaryDirectory(prefix=".tmp-version-") as work:
        folder = Path(work)
        prepare(folder)
        number = _claim(url, name, max(version_numbers(url, name), default=0) + 1)
        card = {**card, "version": number}
        (folder / CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
        version_url = locations.join(url, name, str(number))
        _upload(folder, version_url)
        return card, version_url


def _claim(url: str, name: str, first: int) -> int:
    """The first number from ``first`` on whose claim this process created."""
    fs, root = locations.filesystem(url)
    for number in range(first, first + CLAIM_TRIES):
        claim = f"{root}/{name}/{number}/{CLAIM_FILE}"
        try:
            fs.pipe_file(claim, b"", mode="create")
            return number
        except OSError:  # S3 answers FileExistsError; another library may say it otherwise
            if not fs.exists(claim):
                raise
    raise FileExistsError(f"no free version number for {name!r} under {url}")


def _upload(folder: Path, version_url: str) -> None:
    """Copy the files of ``folder`` to ``version_url``, the card last."""
    fs, root = locations.filesystem(version_url)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.name != CARD_FILE)
    for path in [*files, folder / CARD_FILE]:
        fs.put_file(str(path), f"{root}/{path.name}")


def local_copy(version_path: str | os.PathLike) -> Path:
    """The folder to load a version from: itself when local, else its cached copy (fetched on
    first use). FileNotFoundError when the store has no card there."""
    if not locations.is_remote(version_path):
        return Path(version_path)
    digest = hashlib.sha256(version_path.encode()).hexdigest()[:16]
    name, number = version_path.rstrip("/").rsplit("/", 2)[-2:]
    final = cache_root() / f"{name}-{number}-{digest}"
    if (final / CARD_FILE).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        _download(version_path, work)
        try:
            os.replace(work, final)
        except OSError:  # another process filled the cache first
            if not (final / CARD_FILE).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _download(version_url: str, work: Path) -> None:
    fs, root = locations.filesystem(version_url)
    if not fs.exists(f"{root}/card.json"):
        raise FileNotFoundError(f"{version_url}: no card.json (not a complete model version)")
    for key in fs.ls(root, detail=False):
        leaf = key.rstrip("/").rsplit("/", 1)[-1]
        if leaf not in (CARD_FILE, CLAIM_FILE):
            fs.get_file(key, str(work / leaf))
    fs.get_file(f"{root}/card.json", str(work / CARD_FILE))  # last: its presence = complete
