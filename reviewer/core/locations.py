"""Where the stores live: a local folder, or a prefix on object storage (``s3://bucket/prefix``,
``gs://bucket/prefix``) reached through fsspec.

This module owns telling the two apart, checking a URL, opening its file system (s3fs, gcsfs:
the optional extras ``reviewer[s3]`` and ``reviewer[gcs]``) and naming the keys under it.
Credentials come from the libraries' own sources (environment, profile files, instance roles);
``REVIEWER_S3_ENDPOINT_URL`` points s3fs at an S3-compatible server, and fsspec's own
``FSSPEC_S3_*`` / ``FSSPEC_GCS_*`` variables pass any other storage option.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path, PurePosixPath

# URL scheme -> (fsspec protocol, the extra that installs it)
SCHEMES = {
    "s3": ("s3", "reviewer[s3]"),
    "gs": ("gcs", "reviewer[gcs]"),
    "gcs": ("gcs", "reviewer[gcs]"),
}
ENDPOINT_VARIABLE = "REVIEWER_S3_ENDPOINT_URL"

Location = Path | str  # a local folder, or the URL of a prefix on object storage


class LocationError(ValueError):
    """A store location that cannot be used; ``str(exc)`` says which and why."""


def is_remote(location) -> bool:
    """True for an object-storage URL (``s3://``, ``gs://``), False for a local path."""
    return isinstance(location, str) and location.split("://", 1)[0].lower() in SCHEMES


def parse(raw: str, *, name: str = "location") -> Location:
    """A local path as a Path, an object-storage URL as its normalised text (no trailing
    slash); LocationError for a URL of another scheme or without a bucket."""
    if "://" not in raw:
        return Path(raw)
    scheme, rest = raw.split("://", 1)
    if scheme.lower() not in SCHEMES:
        supported = ", ".join(f"{s}://" for s in SCHEMES)
        raise LocationError(f"{name}={raw!r}: unsupported scheme {scheme}:// (use {supported})")
    bucket = rest.split("/", 1)[0]
    if not bucket:
        raise LocationError(f"{name}={raw!r}: no bucket after {scheme}://")
    return f"{scheme.lower()}://{rest.strip('/')}"


def split(url: str) -> tuple[str, str]:
    """(fsspec protocol, ``bucket/prefix`` without the scheme) of an object-storage URL."""
    scheme, rest = url.split("://", 1)
    return SCHEMES[scheme.lower()][0], rest.strip("/")


def url_of(url: str, path: str) -> str:
    """The URL of ``path`` (``bucket/key``, as the file system names it) in ``url``'s scheme."""
    return f"{url.split('://', 1)[0]}://{path.strip('/')}"


def storage_options(protocol: str) -> dict:
    """What the file system is opened with beyond the libraries' own defaults."""
    # Another process (the web app, a worker, an ingest) writes the same prefix: never answer
    # from a listing this one cached.
    options: dict = {"use_listings_cache": False}
    endpoint = os.environ.get(ENDPOINT_VARIABLE) if protocol == "s3" else None
    return {**options, "endpoint_url": endpoint} if endpoint else options


def filesystem(url: str):
    """(the fsspec file system of ``url``, ``bucket/prefix``); LocationError naming the extra
    to install when its library is missing."""
    protocol, root = split(url)
    options = storage_options(protocol)
    return _filesystem(protocol, tuple(sorted(options.items()))), root


@functools.cache
def _filesystem(protocol: str, options: tuple):
    import fsspec

    try:
        return fsspec.filesystem(protocol, **dict(options))
    except ImportError as exc:
        extra = next(extra for p, extra in SCHEMES.values() if p == protocol)
        raise LocationError(
            f"{protocol}:// storage needs its library: pip install '{extra}' ({exc})"
        ) from exc


def check_key(relative: str) -> str:
    """A store-relative key that stays under its prefix; ValueError otherwise (the same rule
    as the local store's paths: no absolute path, no '..', no backslash, no empty part)."""
    pure = PurePosixPath(relative)
    if (
        not relative
        or pure.is_absolute()
        or "\\" in relative
        or ".." in pure.parts
        or "//" in relative
        or relative.endswith("/")
    ):
        raise ValueError(f"path escapes the file store: {relative!r}")
    return relative


def join(location: Location, *parts: str) -> Location:
    """``location`` / parts, for a folder or an object-storage URL alike."""
    if is_remote(location):
        return "/".join([location.rstrip("/"), *(p.strip("/") for p in parts)])
    return Path(location).joinpath(*parts)


def describe(location: Location) -> str:
    """The location as people read it in messages."""
    return location if is_remote(location) else str(Path(location))
