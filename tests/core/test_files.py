"""The content-addressed file store: layout, idempotent puts, rollback, traversal, leftovers."""

from __future__ import annotations

import os
import time

import pytest

from reviewer.core.config import DEFAULT_MAX_IMAGE_PIXELS as MAX_PIXELS
from reviewer.core.files import TEMP_PREFIX, FileStore
from reviewer.core.images import inspect_image
from tests.support.images import encode, gradient


@pytest.fixture
def stored(tmp_path):
    data = encode(gradient((8, 8)))
    return FileStore(tmp_path / "store"), data, inspect_image(data, max_pixels=MAX_PIXELS)


def test_put_layout_and_idempotence(stored):
    store, data, info = stored
    relative = store.put(data, info)
    assert relative == f"{info.sha256[:2]}/{info.sha256}.png"
    assert store.relative_path(info.sha256, ".png") == relative
    path = store.absolute(relative)
    assert not store.exists(relative)  # staged: it reaches its name durably in sync()
    assert store.put(data, info) == relative  # staged twice: still one file
    store.sync()
    assert path.read_bytes() == data and store.exists(relative)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp left
    first_inode = path.stat().st_ino
    assert store.put(data, info) == relative
    store.sync()
    assert path.stat().st_ino == first_inode  # not rewritten


def test_put_rejects_mismatched_hash(stored):
    store, data, info = stored
    with pytest.raises(ValueError, match="does not match"):
        store.put(data + b"x", info)


def test_remove_rolls_back(stored):
    store, data, info = stored
    relative = store.put(data, info)
    store.sync()
    store.remove(relative)
    store.remove(relative)  # missing is fine
    assert not store.exists(relative)
    store.put(data, info)
    store.remove(relative)  # a staged file is dropped too
    store.sync()
    assert not store.exists(relative)
    assert [p for p in store.root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize(
    "relative", ["../escape.png", "ab/../../escape.png", "/etc/passwd", "", "ab\\..\\x.png"]
)
def test_traversal_refused(tmp_path, relative):
    with pytest.raises(ValueError, match="escapes the file store"):
        FileStore(tmp_path).absolute(relative)


def test_symlink_escape_refused(tmp_path):
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "ab").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="escapes the file store"):
        FileStore(tmp_path / "store").absolute("ab/x.png")


def test_symlinked_file_escape_refused(tmp_path):
    (tmp_path / "store" / "ab").mkdir(parents=True)
    (tmp_path / "secret.png").write_bytes(b"outside")
    (tmp_path / "store" / "ab" / "x.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(ValueError, match="escapes the file store"):
        FileStore(tmp_path / "store").absolute("ab/x.png")


def test_symlink_inside_the_store_and_a_symlinked_root_are_fine(tmp_path):
    (tmp_path / "real" / "cd").mkdir(parents=True)
    (tmp_path / "real" / "cd" / "y.png").write_bytes(b"inside")
    (tmp_path / "real" / "ab").symlink_to(tmp_path / "real" / "cd")
    (tmp_path / "link").symlink_to(tmp_path / "real")  # the root itself reached by a link
    store = FileStore(tmp_path / "link")
    assert store.absolute("ab/y.png").read_bytes() == b"inside"
    assert store.absolute("cd/y.png") == tmp_path / "link" / "cd" / "y.png"
    assert store.absolute("zz/missing.png") == tmp_path / "link" / "zz" / "missing.png"


def test_relative_path_validates():
    store = FileStore("unused")
    with pytest.raises(ValueError):
        store.relative_path("../" + "a" * 61, ".png")
    with pytest.raises(ValueError):
        store.relative_path("a" * 64, ".exe")


def test_clean_temporary(stored):
    store, data, info = stored
    relative = store.put(data, info)
    store.sync()
    shard = store.absolute(relative).parent
    old = shard / f"{TEMP_PREFIX}crashed"
    old.write_bytes(b"partial")
    stale = time.time() - 3600
    os.utime(old, (stale, stale))
    fresh = shard / f"{TEMP_PREFIX}in-progress"
    fresh.write_bytes(b"partial")
    assert store.clean_temporary() == 1
    assert not old.exists() and fresh.exists() and store.exists(relative)
    assert store.clean_temporary(min_age_seconds=0) == 1
    assert not fresh.exists()
    store.sync()
    assert FileStore(store.root / "nowhere").clean_temporary() == 0


def test_sync_without_writes(tmp_path):
    store = FileStore(tmp_path)
    store.sync()  # nothing dirty: fsyncs root only, no error
    FileStore(tmp_path / "absent").sync()
