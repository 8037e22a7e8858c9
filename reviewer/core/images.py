"""Image bytes in, trusted pixels out: decoding, validation and normalisation with
Pillow, and the content hash. `inspect_image` is
the gate every ingested image passes (it fully decodes the bytes, so truncated or
corrupt files are rejected with a human reason instead of failing in the worker);
`normalise` turns every Pillow mode into 8-bit 'L' or 'RGB'; `load_array` and
`load_batch_tolerant` feed the model. The file store is :mod:`reviewer.core.files`. No
database, no TensorFlow.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from reviewer.core.config import DEFAULT_MAX_DECODED_BYTES

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
# Pillow format -> canonical store extension (MPO is how Pillow reports many camera
# JPEGs). Other formats are rejected: every stored file must open in common tools.
FORMAT_EXTENSIONS = {
    "PNG": ".png",
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "BMP": ".bmp",
    "GIF": ".gif",
    "TIFF": ".tif",
    "WEBP": ".webp",
}


STRIP_ROWS = 256  # rows converted at a time, so no full-size float copy is ever made
# Bytes a decoded pixel takes in Pillow's memory by mode (other modes: 4, as RGB's 32 bits).
MODE_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """What an image of this size and mode takes once decoded."""
    return width * height * MODE_BYTES.get(mode, 4)


class ImageRejected(ValueError):
    """An image that cannot be accepted; ``str(exc)`` is the reason shown to people."""


@dataclass(frozen=True)
class ImageInfo:
    """What `inspect_image` learned: hash, header size, ORIGINAL mode, format, extension."""

    sha256: str
    width: int
    height: int
    mode: str
    format: str
    extension: str


def has_image_extension(path: str | os.PathLike[str]) -> bool:
    """Return True when `path` ends in one of `IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _too_large(pixels: int, limit: int, size: tuple[int, int] | None = None) -> ImageRejected:
    shown = f"{size[0]}x{size[1]} = {pixels}" if size else str(pixels)
    return ImageRejected(
        f"image too large: {shown} pixels exceeds the limit of {limit} (REVIEWER_MAX_IMAGE_PIXELS)"
    )


def check_decoded_size(image: Image.Image, max_decoded_bytes: int) -> None:
    """ImageRejected when ``image`` (opened, not decoded) would take more than the budget."""
    width, height = image.size
    needed = decoded_bytes(width, height, image.mode)
    if needed > max_decoded_bytes:
        raise ImageRejected(
            f"image too large: {width}x{height} in mode {image.mode} decodes to {needed} bytes, "
            f"over the limit of {max_decoded_bytes} (REVIEWER_MAX_DECODED_BYTES)"
        )


def inspect_image(
    data: bytes, *, max_pixels: int, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
) -> ImageInfo:
    """Hash, size-check, fully decode and trial-normalise `data` -> `ImageInfo`.

    `max_pixels` is the largest accepted width * height and `max_decoded_bytes` the largest
    decoded size (pixels x bytes per pixel), both checked before a pixel is decoded; Pillow's
    own bomb guard (``Image.MAX_IMAGE_PIXELS``, left untouched) stays a ceiling above them.
    Raises `ImageRejected` with a human-readable reason for any failure.
    """
    # Truncated files would silently decode as grey padding if someone flipped this.
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True; refusing to validate")
    if not data:
        raise ImageRejected("empty file (0 bytes)")
    sha256 = hashlib.sha256(data).hexdigest()
    ceiling = min(max_pixels, Image.MAX_IMAGE_PIXELS or max_pixels)
    try:
        # Image.open reads only the header. Pillow warns (then errors, at 2x) on
        # huge sizes; turn the warning into an exception here instead of mutating
        # the global limit, so nothing leaks to other callers.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        raise _too_large(int(found.group(1)) if found else 0, ceiling) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("not an image (cannot identify format)") from exc
    except Exception as exc:  # a header cut short or garbled: same reason as bad pixels
        raise ImageRejected(f"truncated or corrupt image data ({exc})") from exc
    with image:
        width, height = image.size
        if width * height > max_pixels:  # checked before a single pixel is decoded
            raise _too_large(width * height, max_pixels, (width, height))
        check_decoded_size(image, max_decoded_bytes)
        extension = FORMAT_EXTENSIONS.get(image.format or "")
        if extension is None:
            raise ImageRejected(f"unsupported image format {image.format!r}")
        mode, fmt = image.mode, image.format
        try:
            image.load()
        except MemoryError as exc:
            raise ImageRejected("not enough memory to decode this image") from exc
        except Exception as exc:  # decoders raise OSError, SyntaxError, ...
            raise ImageRejected(f"truncated or corrupt image data ({exc})") from exc
        try:
            normalise(image)
        except MemoryError as exc:
            raise ImageRejected("not enough memory to convert this image") from exc
        except Exception as exc:
            raise ImageRejected(f"cannot normalise mode {mode!r} ({exc})") from exc
    return ImageInfo(sha256, width, height, mode, fmt, extension)


def _strips(image: Image.Image):
    """(top row, array) of ``image`` a strip of rows at a time: no full-size array copy."""
    width, height = image.size
    for top in range(0, height, STRIP_ROWS):
        yield top, np.asarray(image.crop((0, top, width, min(height, top + STRIP_ROWS))))


def _extremes(image: Image.Image, clean) -> tuple[float, float]:
    """(min, max) over ``clean(strip)`` for every strip; (inf, -inf) for no values."""
    low, high = math.inf, -math.inf
    for _, strip in _strips(image):
        values = clean(strip.astype(np.float64))
        if values.size:
            low, high = min(low, float(values.min())), max(high, float(values.max()))
    return low, high


def _gray_scaling(image: Image.Image):
    """The function that maps a strip of a 16/32-bit or float grayscale image onto 0..255."""
    sixteen = lambda v: (v.astype(np.int64) * 255 + 32767) // 65535  # noqa: E731 - v/257, rounded
    if image.mode.startswith("I;16"):
        return sixteen
    if image.mode == "I":
        low, high = _extremes(image, lambda v: v)
        if 0 <= low and high <= 65535:
            return sixteen  # 16-bit data that Pillow widened to 32 bits
    if image.mode == "F":
        low, high = _extremes(image, lambda v: v[~np.isnan(v)])
        if 0 <= low <= high <= 1:
            return lambda v: np.rint(v.astype(np.float64) * 255.0)  # float images in [0, 1]
    finite = lambda v: np.nan_to_num(v, nan=0.0, posinf=0.0, neginf=0.0)  # noqa: E731
    low, high = _extremes(image, finite)  # no natural range: stretch min..max
    if not high > low:
        return lambda v: np.zeros(v.shape)
    factor = 255.0 / (high - low)
    return lambda v: np.rint((finite(v.astype(np.float64)) - low) * factor)


def _gray_to_l(image: Image.Image) -> Image.Image:
    """Scale a 16/32-bit or float grayscale image onto 0..255 without clipping, a strip of
    rows at a time (the decoded image plus its 8-bit result: no float copy at full size)."""
    scale = _gray_scaling(image)
    width, height = image.size
    out = np.empty((height, width), dtype=np.uint8)
    for top, strip in _strips(image):
        out[top : top + len(strip)] = np.clip(scale(strip), 0, 255)
    return Image.fromarray(out)


def normalise(image: Image.Image) -> Image.Image:
    """Return `image` as 8-bit 'L' or 'RGB', upright, transparency composited on white.

    Wide grayscale ('I;16*', 'I', 'F') is rescaled (see `_gray_to_l`); 'LA' -> 'L';
    'RGBA', 'P'/'PA' with transparency -> 'RGB' on white; 'CMYK', 'YCbCr', 'LAB',
    'HSV', 'RGBX' -> 'RGB'; '1' -> 'L'. Raises ValueError for modes Pillow cannot
    convert.
    """
    # Browsers show photos rotated by their EXIF tag; the model must see the same.
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode in ("L", "RGB"):
        return image
    if mode.startswith("I") or mode == "F":
        return _gray_to_l(image)
    if mode == "1":
        return image.convert("L")
    if mode in ("LA", "La"):
        rgba = image.convert("RGBA") if mode == "La" else image
        luma, alpha = rgba.convert("L"), rgba.getchannel("A")
        return Image.composite(luma, Image.new("L", image.size, 255), alpha)
    if mode in ("P", "PA") and (mode == "PA" or "transparency" in image.info):
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "RGBa"):
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", image.size, (255,) * 4), rgba).convert("RGB")
    return image.convert("RGB")


def load_array(
    path: str | os.PathLike[str],
    *,
    size: tuple[int, int],
    channels: int,
    scale: float = 255.0,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> np.ndarray:
    """Load one image as float32 [H, W, C]: normalised, converted to 'L' (`channels`
    1) or 'RGB' (3), resized (bilinear) to `size` = (height, width) when it differs,
    and divided by `scale`. Raises `ImageRejected` if it is missing, undecodable, over
    the decoded-size budget or too big for the memory left (one image's failure, never the
    caller's).
    """
    _check_channels(channels)
    pixels = _pixels(path, size=size, channels=channels, max_decoded_bytes=max_decoded_bytes)
    return pixels.astype(np.float32) / np.float32(scale)


def _pixels(path, *, size, channels, max_decoded_bytes=DEFAULT_MAX_DECODED_BYTES) -> np.ndarray:
    """`load_array` before the scaling (channels checked by the caller): uint8 [H, W, C]."""
    height, width = size
    try:
        with Image.open(path) as opened:
            check_decoded_size(opened, max_decoded_bytes)
            image, mode = normalise(opened), "L" if channels == 1 else "RGB"
            image = image if image.mode == mode else image.convert(mode)
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            return np.asarray(image).reshape(height, width, channels)
    except MemoryError as exc:
        raise ImageRejected("not enough memory to load this image") from exc
    except FileNotFoundError as exc:
        raise ImageRejected("file not found") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("not an image (cannot identify format)") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"truncated or corrupt image data ({exc})") from exc


def load_batch_tolerant(
    paths, *, size, channels, scale: float = 255.0, **options
) -> tuple[np.ndarray, list[int], dict[int, str]]:
    """`load_array` over `paths` (same keywords), skipping failures: the same values, written
    into one array and scaled at once.

    Returns (the good images [M, H, W, C], their indices into `paths`,
    {index: reason} for the images that failed).
    """
    _check_channels(channels)
    out = np.empty((len(paths), *size, channels), dtype=np.float32)
    good, failed = [], {}
    for index, path in enumerate(paths):
        try:
            out[len(good)] = _pixels(path, size=size, channels=channels, **options)
            good.append(index)
        except ImageRejected as exc:
            failed[index] = str(exc)
    out = out[: len(good)]
    out /= np.float32(scale)
    return out, good, failed


def _check_channels(channels) -> None:
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
