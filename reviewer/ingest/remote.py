"""Images to ingest from object storage (``s3://bucket/incoming/``): a prefix read like a
folder (every object below it, with its listed size), given labels from a CSV object, and a
batch's bytes fetched concurrently. Object names get the local rules' answers: a name with
an empty part or '..' is rejected, a name without an image extension is skipped, an object
over the size limit is refused before it is fetched. Nothing is written."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from reviewer.core import locations
from reviewer.core.images import ImageRejected, has_image_extension
from reviewer.core.text import printable
from reviewer.ingest.report import IngestError, IngestReport
from reviewer.ingest.sources import checked_label, label_rows

BAD_NAME = "object name has an empty part or '..' (it cannot be named inside the prefix)"


def _listing(url: str) -> tuple[dict, str]:
    """({key: info} of the objects at or below ``url``, the key they are named relative to)."""
    fs, root = locations.filesystem(url)
    try:
        if fs.isfile(root):
            return {root: fs.info(root)}, root.rsplit("/", 1)[0]
        found = fs.find(root, detail=True)
    except (OSError, ValueError) as exc:
        raise IngestError(f"{url}: cannot list it ({exc})") from exc
    if not found:
        raise IngestError(f"{url}: no objects under this prefix")
    return found, root


def find_objects(url: str, report: IngestReport) -> Iterator[tuple[str, str, int | None]]:
    """Yield (object URL, name relative to ``url``, listed size) of the images at or below
    ``url``, sorted; skipped and rejected names are counted in ``report``."""
    found, base = _listing(url)
    for key in sorted(found):
        relative = key[len(base) :].lstrip("/") if key.startswith(base) else key
        if found[key].get("type") == "directory" or relative.endswith("/"):
            continue  # a folder marker, not an object to ingest
        name = printable(relative)
        if not has_image_extension(relative) or relative.rsplit("/", 1)[-1].startswith("."):
            report.skipped += 1
            continue
        try:
            locations.check_key(relative)
        except ValueError:
            report.rejected.append((name, BAD_NAME))
            continue
        yield locations.url_of(url, key), name, found[key].get("size")


def read_labels(csv_url: str, classes: list[str], listed: set[str]) -> tuple[dict, list]:
    """Read a ``filename,label`` CSV object; names are relative to its prefix.

    Returns (labels by object URL, rejected rows as (name, reason)); a label outside the class
    list maps its object to a BadLabel. A row naming an object that is neither in ``listed``
    nor below the CSV's folder is rejected as "no such file".
    """
    fs, key = locations.filesystem(csv_url)
    base = key.rsplit("/", 1)[0]
    labels, rejected, folder_listed = {}, [], False
    try:
        handle = fs.open(key, "r", newline="", encoding="utf-8")
    except FileNotFoundError:
        raise IngestError(f"{csv_url}: labels file does not exist") from None
    with handle:
        for where, name, label in label_rows(handle, csv_url, rejected):
            try:
                target = locations.url_of(csv_url, f"{base}/{locations.check_key(name)}")
            except ValueError:
                shown = printable(name)
                rejected.append(
                    (f"{where} ({shown})", "file name must stay inside the CSV's folder")
                )
                continue
            if target not in listed and not folder_listed:  # once, on the first such name
                listed, folder_listed = listed | _objects_below(fs, base, csv_url), True
            if target not in listed:
                rejected.append((f"{where} ({printable(name)})", "no such file"))
            elif label:
                labels[target] = checked_label(label, classes, where)
    return labels, rejected


def _objects_below(fs, base: str, url: str) -> set[str]:
    """The URLs of every object below ``base`` (in ``url``'s scheme)."""
    return {locations.url_of(url, key) for key in fs.find(base)}


def fetch_batch(urls: list[str], sizes: list[int | None], max_file_bytes: int) -> list:
    """The bytes of each object, fetched concurrently (one bulk request per file system), or
    the reason it cannot be had: ImageRejected over the limit (not fetched when the listing
    said so), or the library's error."""
    result: list = [None] * len(urls)
    by_filesystem: dict = defaultdict(dict)
    for k, (url, size) in enumerate(zip(urls, sizes, strict=True)):
        if size is not None and size > max_file_bytes:
            result[k] = _too_large(size, max_file_bytes)
            continue
        fs, key = locations.filesystem(url)
        by_filesystem[fs][key] = k
    for fs, keys in by_filesystem.items():
        fetched = fs.cat(list(keys), on_error="return")
        for key, k in keys.items():
            data = fetched.get(key, FileNotFoundError(key))
            if isinstance(data, bytes) and len(data) > max_file_bytes:  # it grew since listed
                data = _too_large(len(data), max_file_bytes)
            result[k] = data
    return result


def _too_large(size: int, limit: int) -> ImageRejected:
    return ImageRejected(
        f"file too large: {size} bytes, over the limit of {limit} (REVIEWER_MAX_FILE_BYTES)"
    )
