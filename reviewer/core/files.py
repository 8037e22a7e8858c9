"""The content-addressed file store: ``<sha[:2]>/<sha><ext>`` files under one root.

This module owns where image files live and how they get there safely: a
put stages the bytes under a temporary name, `sync` makes a whole batch
durable (one ``syncfs`` on Linux), renames the files to their final names and
makes the renames durable, so a database row committed after `sync` never
names a file a crash could lose. Paths from outside are checked so nothing
outside the root is ever reached.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import os
import re
import stat
import time
from pathlib import Path, PurePosixPath

from reviewer.core.images import IMAGE_EXTENSIONS, ImageInfo

TEMP_PREFIX = ".tmp-"
_SHA256 = re.compile(r"[0-9a-f]{64}")
NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def is_no_space(exc: BaseException) -> bool:
    """An OSError that says the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


def _syncfs(root: Path) -> bool:
    """Flush the data and metadata of root's whole file system (Linux); False if unavailable."""
    syncfs = getattr(_libc(), "syncfs", None)
    if syncfs is None:
        return False
    fd = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_bytes(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


@functools.cache
def _libc():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def _has_symlink_below(root: Path, parts: tuple[str, ...]) -> bool:
    """True when a component of ``root/parts...`` below ``root`` is a symbolic link (a missing
    one ends the walk: nothing below it exists)."""
    path = str(root)
    for part in parts:
        path = os.path.join(path, part)
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return True
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError:  # unreadable (permissions, a name too long): the full check decides
            return True
    return False


def store_path(sha256: str, extension: str) -> str:
    """Return ``f"{sha256[:2]}/{sha256}{extension}"`` after validating both parts."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a lowercase sha256 hex digest: {sha256!r}")
    if extension not in IMAGE_EXTENSIONS:
        raise ValueError(f"not an image extension: {extension!r}")
    return f"{sha256[:2]}/{sha256}{extension}"


class FileStore:
    """Content-addressed image files under `root`, laid out as ``<sha[:2]>/<sha><ext>``.

    Writes are atomic (temporary file + ``os.replace``) and durable once `sync` has
    run; the caller syncs once per batch, before committing the database rows that
    point at the files, so a committed row never names a file a crash could lose.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._dirty: set[Path] = set()
        self._pending: dict[Path, Path] = {}  # temporary file -> final name, until sync()
        self._staged: set[Path] = set()  # the final names in _pending
        self.just_synced: list[str] = []  # relative paths the last sync() moved into place

    relative_path = staticmethod(store_path)

    def absolute(self, relative: str) -> Path:
        """Resolve a store-relative path; ValueError if it would leave the root."""
        pure = PurePosixPath(relative)
        if not relative or pure.is_absolute() or "\\" in relative or ".." in pure.parts:
            raise ValueError(f"path escapes the file store: {relative!r}")
        path = self.root.joinpath(*pure.parts)
        # A symlink inside the store must not lead outside it either; without one below the
        # root (two lstat calls for a stored image), the path is the root's, no resolve needed.
        if _has_symlink_below(self.root, pure.parts) and not path.resolve().is_relative_to(
            self.root.resolve()
        ):
            raise ValueError(f"path escapes the file store: {relative!r}")
        return path

    def put(self, data: bytes, info: ImageInfo) -> str:
        """Stage `data` under its hash and return the relative path (idempotent).

        The file reaches its final name durably in `sync`, which the caller runs
        once per batch before committing rows that point at it.
        """
        if hashlib.sha256(data).hexdigest() != info.sha256:
            raise ValueError("data does not match info.sha256")
        relative = store_path(info.sha256, info.extension)
        # Built from a validated hash and extension, so no traversal check is needed.
        final = self.root / relative
        if final in self._staged or (final.is_file() and final.stat().st_size == len(data)):
            return relative  # same hash, same size: already stored
        if not final.parent.is_dir():
            final.parent.mkdir(parents=True, exist_ok=True)
            self._dirty.add(self.root)  # the new shard directory is an entry of root
        temporary = final.with_name(f"{TEMP_PREFIX}{os.getpid()}-{final.name}")
        try:
            _write_bytes(temporary, data)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self._pending[temporary] = final
        self._staged.add(final)
        return relative

    def sync(self) -> None:
        """Make every staged file durable under its final name, and the directories too.

        The staged files' data is flushed first (one ``syncfs`` on Linux: an
        fsync per file costs milliseconds each), and only then are they renamed,
        so a final name never points at data a crash could lose; a second flush
        makes the renames durable.
        """
        try:
            if self._pending and not _syncfs(self.root):
                for temporary in self._pending:
                    _fsync_path(temporary)
        except OSError:
            self.discard_pending()  # nothing reached its final name: drop the staged files
            raise
        self.just_synced = []
        for temporary, final in self._pending.items():
            os.replace(temporary, final)
            self._dirty.add(final.parent)
            self.just_synced.append(final.relative_to(self.root).as_posix())
        self._pending.clear()
        self._staged.clear()
        if self._dirty and not _syncfs(self.root):
            for directory in sorted(self._dirty | {self.root}):
                if directory.is_dir():
                    _fsync_path(directory)
        self._dirty.clear()

    def settle(self) -> None:
        """The rows naming the last sync's files are committed: nothing left to roll back."""
        self.just_synced = []

    def roll_back(self) -> None:
        """Undo a batch whose rows were not committed: delete the files staged since the last
        sync and those the last sync moved into place (rows name none of them)."""
        self.discard_pending()
        for relative in self.just_synced:
            self.remove(relative)
        self.just_synced = []

    def discard_pending(self) -> None:
        """Delete the files staged since the last sync (a batch that failed before it)."""
        for temporary in self._pending:
            temporary.unlink(missing_ok=True)
        self._pending.clear()
        self._staged.clear()

    def exists(self, relative: str) -> bool:
        """True when the store holds a file at `relative`."""
        return self.absolute(relative).is_file()

    def read_bytes(self, relative: str) -> bytes:
        """A stored file's bytes; FileNotFoundError when it is missing."""
        return self.absolute(relative).read_bytes()

    def sources(self, relatives: list[str]) -> list:
        """What the image loader opens for each path: the file's path, or the reason it cannot
        be (a ValueError for a path that leaves the store)."""
        result = []
        for relative in relatives:
            try:
                result.append(self.absolute(relative))
            except ValueError as exc:
                result.append(exc)
        return result

    def remove(self, relative: str) -> None:
        """Delete a stored file (ingest rolls back a batch whose rows were not committed with
        it, an upload the file of a row that failed); missing is fine."""
        path = self.absolute(relative)
        for temporary in [t for t, final in self._pending.items() if final == path]:
            temporary.unlink(missing_ok=True)
            del self._pending[temporary]
            self._staged.discard(path)
        path.unlink(missing_ok=True)
        self._dirty.add(path.parent)

    def clean_temporary(self, *, min_age_seconds: float = 60.0) -> int:
        """Remove temporary files left by a crash; return how many were removed.

        Files younger than `min_age_seconds` are kept: they may belong to a put()
        running right now in another process.
        """
        if not self.root.is_dir():
            return 0
        cutoff, removed = time.time() - min_age_seconds, 0
        for path in [*self.root.glob(f"{TEMP_PREFIX}*"), *self.root.glob(f"*/{TEMP_PREFIX}*")]:
            if path.is_file() and path.stat().st_mtime <= cutoff:
                path.unlink(missing_ok=True)
                self._dirty.add(path.parent)
                removed += 1
        return removed
