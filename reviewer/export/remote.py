"""An export to object storage (``reviewer export s3://bucket/exports/run1``): prepared in a
local temporary folder like any export, then uploaded with the data first and the report and
manifests last, ``manifest.csv`` the very last, so a reader who waits for ``manifest.csv``
never sees a half export. Replacing an earlier export (--force) deletes its ``manifest.csv``
first, then the rest of it, then uploads the new one. Object stores have no folders: the
empty class folders of a local export are not there."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from reviewer.core import locations
from reviewer.export.files import MARKER, ExportError

LAST = ["report.txt", "manifest.jsonl", "manifest.csv"]  # in upload order


def check_out(url: str, force: bool) -> bool:
    """Whether ``url`` holds an earlier export to replace; refuse anything else in the way."""
    fs, root = locations.filesystem(url)
    try:
        found = fs.find(root)
    except (OSError, ValueError) as exc:
        raise ExportError(f"{url}: cannot list it ({exc})") from exc
    if not found:
        return False
    if not force:
        raise ExportError(f"{url} is not empty: choose another prefix or pass --force")
    if f"{root}/{MARKER}" not in found:
        raise ExportError(f"{url} does not look like an export (no {MARKER}); not replacing it")
    return True


def work_folder() -> Path:
    """A local temporary folder the export is prepared in before it is uploaded."""
    return Path(tempfile.mkdtemp(prefix=".reviewer-export-"))


def upload_data(work: Path, url: str, replace: bool) -> list[str]:
    """Upload every file of the prepared ``work`` but the report and manifests (no database
    transaction is open meanwhile); an earlier export at ``url`` goes first, its
    ``manifest.csv`` before anything else. Returns the keys written, for `discard`."""
    fs, root = locations.filesystem(url)
    if replace:
        fs.rm_file(f"{root}/manifest.csv")
        fs.rm(fs.find(root))
    files = sorted(p for p in work.rglob("*") if p.is_file())
    data = [p for p in files if p.relative_to(work).as_posix() not in LAST]
    keys = [f"{root}/{p.relative_to(work).as_posix()}" for p in data]
    if data:
        fs.put([str(p) for p in data], keys)
    return keys


def upload_manifests(work: Path, url: str) -> None:
    """Upload the report and the manifests, ``manifest.csv`` last: the export is complete."""
    fs, root = locations.filesystem(url)
    for name in LAST:
        fs.put_file(str(work / name), f"{root}/{name}")
    shutil.rmtree(work, ignore_errors=True)


def discard(url: str, keys: list[str]) -> None:
    """Remove the data of an export that will not be finished (it has no manifest)."""
    if keys:
        fs, _ = locations.filesystem(url)
        fs.rm(keys)
