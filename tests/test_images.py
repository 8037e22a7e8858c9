"""Tests for reviewer.core.images: rejection reasons, normalisation, loading, the file store."""

import hashlib
import io
import os
import struct
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from reviewer.core.files import TEMP_PREFIX, FileStore
from reviewer.core.images import (
    ImageInfo,
    ImageRejected,
    has_image_extension,
    inspect_image,
    load_array,
    load_batch_tolerant,
    normalise,
)

MAX_PIXELS = 89_478_485


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(size=(32, 24), mode="RGB") -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).convert(
        mode
    )


def png_declaring(width: int, height: int) -> bytes:
    """A real 1x1 grayscale PNG whose IHDR is patched to claim width x height."""
    data = bytearray(encode(Image.new("L", (1, 1))))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# --- rejections -------------------------------------------------------------------------


def test_truncated_load_stays_off():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_truncated_png_rejected():
    data = encode(gradient((64, 64)))
    with pytest.raises(ImageRejected, match="truncated or corrupt image data"):
        inspect_image(data[: len(data) // 2], max_pixels=MAX_PIXELS)


def test_truncated_jpeg_rejected():
    data = encode(gradient((64, 64)), "JPEG", quality=90)
    with pytest.raises(ImageRejected, match="truncated or corrupt image data"):
        inspect_image(data[: len(data) // 2], max_pixels=MAX_PIXELS)


@pytest.mark.parametrize("keep", [0.2, 0.9])
def test_jpeg_cut_in_header_or_pixels_rejected(keep):
    data = encode(gradient((64, 64)), "JPEG", quality=90)
    with pytest.raises(ImageRejected, match="truncated or corrupt image data"):
        inspect_image(data[: int(len(data) * keep)], max_pixels=MAX_PIXELS)


def test_text_file_rejected():
    with pytest.raises(ImageRejected, match=r"not an image \(cannot identify format\)"):
        inspect_image(b"hello, I am not a picture\n" * 10, max_pixels=MAX_PIXELS)


def test_empty_file_rejected():
    with pytest.raises(ImageRejected, match=r"empty file \(0 bytes\)"):
        inspect_image(b"", max_pixels=MAX_PIXELS)


def test_decompression_bomb_rejected_without_allocating():
    data = png_declaring(20_000, 20_000)
    assert len(data) < 200
    tracemalloc.start()
    try:
        with pytest.raises(ImageRejected) as caught:
            inspect_image(data, max_pixels=MAX_PIXELS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    reason = str(caught.value)
    assert reason.startswith("image too large: ")
    assert "400000000 pixels exceeds the limit of 89478485 (REVIEWER_MAX_IMAGE_PIXELS)" in reason
    assert peak < 10_000_000  # decoding 400 Mpx would need hundreds of MB
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS  # the global was not touched


def test_own_limit_applies_below_pillows():
    data = png_declaring(200, 100)
    with pytest.raises(ImageRejected) as caught:
        inspect_image(data, max_pixels=10_000)
    assert str(caught.value) == (
        "image too large: 200x100 = 20000 pixels exceeds the limit of 10000 "
        "(REVIEWER_MAX_IMAGE_PIXELS)"
    )


def test_unsupported_format_rejected():
    with pytest.raises(ImageRejected, match="unsupported image format 'PPM'"):
        inspect_image(encode(gradient(), "PPM"), max_pixels=MAX_PIXELS)


# --- acceptance and normalisation ---------------------------------------------------------


def test_inspect_reports_hash_size_mode_format():
    data = encode(gradient((32, 24)), "JPEG")
    info = inspect_image(data, max_pixels=MAX_PIXELS)
    assert info == ImageInfo(hashlib.sha256(data).hexdigest(), 32, 24, "RGB", "JPEG", ".jpg")


def test_sixteen_bit_grayscale_scaled_not_clipped():
    array = np.array([[0, 257, 65535], [32896, 1000, 65535]], dtype=np.uint16)
    data = encode(Image.fromarray(array))
    info = inspect_image(data, max_pixels=MAX_PIXELS)
    assert info.mode.startswith("I")  # the original mode is recorded
    with Image.open(io.BytesIO(data)) as image:
        out = normalise(image)
    assert out.mode == "L"
    np.testing.assert_array_equal(np.asarray(out), [[0, 1, 255], [128, 4, 255]])


def test_rgba_transparent_becomes_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 255))
    rgba.putpixel((0, 0), (0, 0, 0, 0))
    data = encode(rgba)
    assert inspect_image(data, max_pixels=MAX_PIXELS).mode == "RGBA"
    with Image.open(io.BytesIO(data)) as image:
        out = normalise(image)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 255, 255)
    assert out.getpixel((1, 1)) == (255, 0, 0)


def test_la_becomes_l_on_white():
    la = Image.new("LA", (2, 1), (10, 255))
    la.putpixel((1, 0), (10, 0))
    out = normalise(la)
    assert out.mode == "L"
    assert list(np.asarray(out).ravel()) == [10, 255]


def test_palette_with_and_without_transparency():
    plain = gradient((8, 8)).convert("P")
    data = encode(plain)
    assert inspect_image(data, max_pixels=MAX_PIXELS).mode == "P"
    assert normalise(plain).mode == "RGB"
    with_alpha = Image.new("P", (2, 1))
    with_alpha.putpalette([0, 0, 255] * 256)
    with_alpha.info["transparency"] = 0
    with_alpha.putpixel((1, 0), 1)
    with Image.open(io.BytesIO(encode(with_alpha))) as image:
        out = normalise(image)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (255, 255, 255)  # transparent index -> white
    assert out.getpixel((1, 0)) == (0, 0, 255)


def test_cmyk_jpeg_accepted():
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)
    info = inspect_image(data, max_pixels=MAX_PIXELS)
    assert (info.mode, info.format, info.extension) == ("CMYK", "JPEG", ".jpg")
    with Image.open(io.BytesIO(data)) as image:
        out = normalise(image)
    assert out.mode == "RGB"
    red, green, blue = out.getpixel((8, 8))
    assert red > 200 and green < 60 and blue < 60


def test_one_bit_becomes_l():
    bilevel = Image.new("1", (3, 1), 0)
    bilevel.putpixel((1, 0), 1)
    data = encode(bilevel)
    assert inspect_image(data, max_pixels=MAX_PIXELS).mode == "1"
    out = normalise(bilevel)
    assert out.mode == "L"
    assert list(np.asarray(out).ravel()) == [0, 255, 0]


@pytest.mark.parametrize("mode", ["YCbCr", "LAB", "HSV", "RGBX"])
def test_colour_spaces_become_rgb(mode):
    assert normalise(Image.new(mode, (2, 2))).mode == "RGB"


def test_has_image_extension():
    assert has_image_extension("a/b/C.PNG") and has_image_extension("x.JpEg")
    assert not has_image_extension("labels.csv") and not has_image_extension("png")


# --- loading ------------------------------------------------------------------------------


@pytest.fixture
def picture_paths(tmp_path):
    white = tmp_path / "white.png"
    Image.new("L", (28, 28), 255).save(white)
    wide = tmp_path / "wide.jpg"
    gradient((40, 20)).save(wide, quality=95)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    return white, wide, broken


def test_load_array_shapes_and_scaling(picture_paths):
    white, wide, _ = picture_paths
    gray = load_array(white, size=(28, 28), channels=1)
    assert gray.shape == (28, 28, 1) and gray.dtype == np.float32
    assert np.allclose(gray, 1.0)
    rgb = load_array(white, size=(28, 28), channels=3, scale=1.0)
    assert rgb.shape == (28, 28, 3) and np.allclose(rgb, 255.0)
    resized = load_array(wide, size=(10, 30), channels=3)
    assert resized.shape == (10, 30, 3)
    assert 0.0 <= resized.min() and resized.max() <= 1.0


def test_load_batch_tolerant(picture_paths, tmp_path):
    white, wide, broken = picture_paths
    array, good, failed = load_batch_tolerant(
        [broken, white, tmp_path / "missing.png", wide], size=(8, 8), channels=3
    )
    assert array.shape == (2, 8, 8, 3)
    assert good == [1, 3]
    assert failed[0].startswith("not an image") and failed[2] == "file not found"
    empty, good, failed = load_batch_tolerant([broken], size=(8, 8), channels=1)
    assert empty.shape == (0, 8, 8, 1) and good == [] and list(failed) == [0]


# --- file store ---------------------------------------------------------------------------


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
