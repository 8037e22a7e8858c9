"""Configuration from environment variables (``REVIEWER_*``).

This module owns every setting the commands, the worker and the web app read,
with its default. It imports nothing of ``reviewer`` but the location parser (no
fsspec until a store is opened), so any process can read its settings before
deciding what else to load. The image and model stores are local folders (Path)
or object-storage URLs (text), reviewer.core.locations. A test or a second deployment
is just another set of variables: ``Config.from_env(environ)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from reviewer.core.locations import Location, parse

DEFAULT_INSTANCE_DIR = Path("instance")
# Pillow's own default; a larger image is treated as a decompression bomb.
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485
DEFAULT_MAX_UPLOAD_BYTES = 16 * 1024 * 1024
# Requests one web process serves at once (`reviewer serve`'s thread pool, and the size of the
# database pool, so that no request waits for a connection another thread holds).
DEFAULT_WEB_THREADS = 8
# What one image may take once decoded (width x height x bytes per pixel): a small file can
# declare a huge, deep image. 256 MiB admits an 8K photo; the pixel limit stays a second bound.
DEFAULT_MAX_DECODED_BYTES = 256 * 1024 * 1024
DEFAULT_SESSION_HOURS = 12  # a working day; a session ends then even if it is in use
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _location(environ: Mapping[str, str], name: str, default: Location) -> Location:
    raw = environ.get(name)
    return parse(raw, name=name) if raw else default


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = (environ.get(name) or "").strip().lower()
    if raw not in TRUE + FALSE:
        raise ValueError(f"{name}={raw!r} must be one of 1, true, yes, on, 0, false, no, off")
    return raw in TRUE


@dataclass(frozen=True)
class Config:
    """Settings of one deployment. Build it with :meth:`from_env`."""

    database_url: str = f"sqlite:///{DEFAULT_INSTANCE_DIR / 'reviewer.db'}"
    data_dir: Location = DEFAULT_INSTANCE_DIR / "images"
    model_dir: Location = Path("models")
    secret_key: str = ""
    mc_samples: int | None = None  # None: take T from the model card
    score_lease_seconds: int = 600
    review_lease_seconds: int = 300
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_file_bytes: int = DEFAULT_MAX_UPLOAD_BYTES  # an ingested file is refused above it
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    web_threads: int = DEFAULT_WEB_THREADS
    session_hours: int = DEFAULT_SESSION_HOURS
    secure_cookies: bool = False  # on behind HTTPS (README's production section)
    proxy_hops: int = 0  # trusted proxies in front of the app, whose X-Forwarded-For counts
    testing: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        defaults = cls()
        samples = env.get("REVIEWER_MC_SAMPLES")
        return cls(
            database_url=env.get("REVIEWER_DATABASE_URL") or defaults.database_url,
            data_dir=_location(env, "REVIEWER_DATA_DIR", defaults.data_dir),
            model_dir=_location(env, "REVIEWER_MODEL_DIR", defaults.model_dir),
            secret_key=env.get("REVIEWER_SECRET_KEY") or "",
            mc_samples=_int(env, "REVIEWER_MC_SAMPLES", 0) if samples else None,
            score_lease_seconds=_int(env, "REVIEWER_SCORE_LEASE_SECONDS", 600),
            review_lease_seconds=_int(env, "REVIEWER_REVIEW_LEASE_SECONDS", 300),
            max_image_pixels=_int(env, "REVIEWER_MAX_IMAGE_PIXELS", DEFAULT_MAX_IMAGE_PIXELS),
            max_upload_bytes=_int(env, "REVIEWER_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            max_file_bytes=_int(env, "REVIEWER_MAX_FILE_BYTES", DEFAULT_MAX_UPLOAD_BYTES),
            max_decoded_bytes=_int(env, "REVIEWER_MAX_DECODED_BYTES", DEFAULT_MAX_DECODED_BYTES),
            web_threads=_int(env, "REVIEWER_WEB_THREADS", DEFAULT_WEB_THREADS),
            session_hours=_int(env, "REVIEWER_SESSION_HOURS", DEFAULT_SESSION_HOURS),
            secure_cookies=_flag(env, "REVIEWER_SECURE_COOKIES"),
            proxy_hops=_int(env, "REVIEWER_PROXY_HOPS", 0, minimum=0),
        )

    def with_(self, **changes) -> Config:
        """A copy with some settings changed (tests, the demo)."""
        return replace(self, **changes)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class TestConfig(Config):
    """Settings for tests: everything under one temporary directory."""

    __test__ = False  # not a pytest test class

    @classmethod
    def in_directory(cls, root: Path, database_url: str | None = None) -> Config:
        root = Path(root)
        return Config(
            database_url=database_url or f"sqlite:///{root / 'reviewer.db'}",
            data_dir=root / "images",
            model_dir=root / "models",
            secret_key="test-secret",
            testing=True,
        )
