"""Tests for reviewer.core.images: rejection reasons, normalisation, loading, the file store."""

import hashlib
import io
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from reviewer.core.images import (
    ImageInfo,
    ImageRejected,
    has_image_extension,
    inspect_image,
    load_array,
    load_batch_tolerant,
    normalise,
)
from tests.support.images import encode, gradient

MAX_PIXELS = 89_478_485


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
    one = load_batch_tolerant([wide], size=(8, 8), channels=3, scale=1.0)[0][0]
    assert np.array_equal(one, load_array(wide, size=(8, 8), channels=3, scale=1.0))
    for bad in (2, None):
        with pytest.raises(ValueError, match="channels must be 1 or 3"):
            load_batch_tolerant([white], size=(8, 8), channels=bad)
