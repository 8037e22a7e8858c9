"""The content-addressed image store on object storage: ``<sha[:2]>/<sha><ext>`` objects
under one ``s3://`` or ``gs://`` prefix, with the local store's interface (reviewer.core.files).

A put keeps the bytes until `sync`, which uploads the batch concurrently (fsspec's bulk
``pipe``); an object store's PUT is atomic and durable when it returns, so a row committed
after `sync` never names an object a crash could lose. Only objects this batch created are
removed by `roll_back`: an object that was already there may be named by a committed row.
`image_store` opens the store a location names, local or remote.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor

from reviewer.core import locations
from reviewer.core.files import FileStore, store_path
from reviewer.core.images import ImageInfo

EXISTS_THREADS = 16  # HEAD requests in flight while a batch checks what is already stored


class ObjectStore:
    """Content-addressed image objects under the prefix ``url`` (``s3://bucket/prefix``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, self.root = locations.filesystem(url)
        self._pending: dict[str, bytes] = {}  # relative path -> bytes, until sync()
        self.just_synced: list[str] = []  # relative paths the last sync() created

    relative_path = staticmethod(store_path)

    def key(self, relative: str) -> str:
        """The file system's name of a store-relative path; ValueError if it leaves the prefix."""
        return f"{self.root}/{locations.check_key(relative)}"

    def put(self, data: bytes, info: ImageInfo) -> str:
        """Stage ``data`` under its hash and return the relative path (idempotent); it is
        uploaded by `sync`."""
        if hashlib.sha256(data).hexdigest() != info.sha256:
            raise ValueError("data does not match info.sha256")
        relative = store_path(info.sha256, info.extension)
        self._pending.setdefault(relative, data)
        return relative

    def sync(self) -> None:
        """Upload every staged object that is not stored yet (concurrently); on a failure the
        objects of this batch are removed again and the error is raised."""
        pending, self._pending = self._pending, {}
        self.just_synced = []
        if not pending:
            return
        stored = self._exists_many(list(pending))
        new = {self.key(r): data for r, data in pending.items() if not stored[r]}
        self.just_synced = [r for r in pending if not stored[r]]
        try:
            if new:
                self.fs.pipe(new)
        except BaseException:
            self.roll_back()
            raise

    def _exists_many(self, relatives: list[str]) -> dict[str, bool]:
        with ThreadPoolExecutor(min(EXISTS_THREADS, len(relatives))) as pool:
            found = pool.map(lambda r: self.fs.exists(self.key(r)), relatives)
            return dict(zip(relatives, found, strict=True))

    def settle(self) -> None:
        """The rows naming the last sync's objects are committed: nothing left to roll back."""
        self.just_synced = []

    def roll_back(self) -> None:
        """Undo a batch whose rows were not committed: drop what is staged and delete the
        objects the last sync created (rows name none of them)."""
        self.discard_pending()
        created, self.just_synced = self.just_synced, []
        if created:
            self._remove_keys([self.key(r) for r in created])

    def discard_pending(self) -> None:
        """Drop the objects staged since the last sync (nothing was uploaded yet)."""
        self._pending.clear()

    def exists(self, relative: str) -> bool:
        """True when the store holds an object at ``relative``."""
        return self.fs.exists(self.key(relative))

    def remove(self, relative: str) -> None:
        """Delete a stored object (or a staged one); missing is fine."""
        self._pending.pop(relative, None)
        self._remove_keys([self.key(relative)])

    def _remove_keys(self, keys: list[str]) -> None:
        try:
            self.fs.rm(keys)
        except FileNotFoundError:
            pass

    def clean_temporary(self, *, min_age_seconds: float = 60.0) -> int:
        """Nothing to clean: an object appears whole or not at all (no temporary names)."""
        return 0

    def read_bytes(self, relative: str) -> bytes:
        """A stored object's bytes; FileNotFoundError when it is missing."""
        return self.fs.cat_file(self.key(relative))

    def sources(self, relatives: list[str]) -> list:
        """What the image loader opens for each path: the bytes as a file object, fetched
        concurrently, or the reason it cannot be read (ValueError, FileNotFoundError, ...)."""
        keys, result = {}, [None] * len(relatives)
        for k, relative in enumerate(relatives):
            try:
                keys[self.key(relative)] = k
            except ValueError as exc:
                result[k] = exc
        fetched = self.fs.cat(list(keys), on_error="return") if keys else {}
        for key, k in keys.items():
            data = fetched.get(key, FileNotFoundError(key))
            result[k] = io.BytesIO(data) if isinstance(data, bytes) else data
        return result

    def open(self, relative: str):
        """A readable, seekable file object of a stored object (streamed from the store)."""
        return self.fs.open(self.key(relative), "rb")

    def size(self, relative: str) -> int:
        return int(self.fs.size(self.key(relative)))


def image_store(location: locations.Location) -> FileStore | ObjectStore:
    """The image store at ``location``: a folder, or an ``s3://`` / ``gs://`` prefix."""
    if locations.is_remote(location):
        return ObjectStore(location)
    return FileStore(location)
