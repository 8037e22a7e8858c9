"""Image bytes in, trusted pixels out: decoding, validation and normalisation with
Pillow, the content hash, and the content-addressed file store. `inspect_image` is
the gate every ingested image passes (it fully decodes the bytes, so truncated or
corrupt files are rejected with a human reason instead of failing in the worker);
`normalise` turns every Pillow mode into 8-bit 'L' or 'RGB'; `load_array` and
`load_batch` feed the model; `FileStore` writes ``<sha[:2]>/<sha><ext>`` files
atomically and durably. No database, no TensorFlow.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

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
TEMP_PREFIX = ".tmp-"
_SHA256 = re.compile(r"[0-9a-f]{64}")


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


def inspect_image(data: bytes, *, max_pixels: int) -> ImageInfo:
    """Hash, size-check, fully decode and trial-normalise `data` -> `ImageInfo`.

    `max_pixels` is the largest accepted width * height; Pillow's own bomb guard
    (``Image.MAX_IMAGE_PIXELS``, left untouched) stays a ceiling above it. Raises
    `ImageRejected` with a human-readable reason for any failure.
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
        extension = FORMAT_EXTENSIONS.get(image.format or "")
        if extension is None:
            raise ImageRejected(f"unsupported image format {image.format!r}")
        mode, fmt = image.mode, image.format
        try:
            image.load()
        except Exception as exc:  # decoders raise OSError, SyntaxError, ...
            raise ImageRejected(f"truncated or corrupt image data ({exc})") from exc
        try:
            normalise(image)
        except Exception as exc:
            raise ImageRejected(f"cannot normalise mode {mode!r} ({exc})") from exc
    return ImageInfo(sha256, width, height, mode, fmt, extension)


def _gray_to_l(image: Image.Image) -> Image.Image:
    """Scale a 16/32-bit or float grayscale image onto 0..255 without clipping."""
    values = np.asarray(image).astype(np.float64)
    if image.mode.startswith("I;16"):
        scaled = values / 257.0  # 65535 -> 255 exactly
    elif image.mode == "I" and values.size and 0 <= values.min() and values.max() <= 65535:
        scaled = values / 257.0  # 16-bit data that Pillow widened to 32 bits
    elif image.mode == "F" and values.size and 0 <= np.nanmin(values) <= np.nanmax(values) <= 1:
        scaled = values * 255.0  # float images in [0, 1]
    else:  # anything else has no natural range: stretch min..max
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        low, high = (values.min(), values.max()) if values.size else (0.0, 0.0)
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


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
    path: str | os.PathLike[str], *, size: tuple[int, int], channels: int, scale: float = 255.0
) -> np.ndarray:
    """Load one image as float32 [H, W, C]: normalised, converted to 'L' (`channels`
    1) or 'RGB' (3), resized (bilinear) to `size` = (height, width) when it differs,
    and divided by `scale`. Raises `ImageRejected` if it is missing or undecodable.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    height, width = size
    try:
        with Image.open(path) as opened:
            image = normalise(opened).convert("L" if channels == 1 else "RGB")
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
    except FileNotFoundError as exc:
        raise ImageRejected("file not found") from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("not an image (cannot identify format)") from exc
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"truncated or corrupt image data ({exc})") from exc
    return array.reshape(height, width, channels) / np.float32(scale)


def load_batch_tolerant(paths, **options) -> tuple[np.ndarray, list[int], dict[int, str]]:
    """`load_array` over `paths` (same keywords), skipping failures.

    Returns (the good images [M, H, W, C], their indices into `paths`,
    {index: reason} for the images that failed).
    """
    arrays, good, failed = [], [], {}
    for index, path in enumerate(paths):
        try:
            arrays.append(load_array(path, **options))
            good.append(index)
        except ImageRejected as exc:
            failed[index] = str(exc)
    height, width = options["size"]
    empty = np.zeros((0, height, width, options["channels"]), dtype=np.float32)
    return (np.stack(arrays) if arrays else empty), good, failed


def load_batch(paths, **options) -> np.ndarray:
    """`load_array` over `paths` stacked to [N, H, W, C]; a failure raises
    `ImageRejected` naming the failing path."""
    paths = list(paths)
    array, _, failed = load_batch_tolerant(paths, **options)
    for index, reason in failed.items():
        raise ImageRejected(f"{paths[index]}: {reason}")
    return array


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


@functools.cache
def _libc():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


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

    def relative_path(self, sha256: str, extension: str) -> str:
        """Return ``f"{sha256[:2]}/{sha256}{extension}"`` after validating both parts."""
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a lowercase sha256 hex digest: {sha256!r}")
        if extension not in IMAGE_EXTENSIONS:
            raise ValueError(f"not an image extension: {extension!r}")
        return f"{sha256[:2]}/{sha256}{extension}"

    def absolute(self, relative: str) -> Path:
        """Resolve a store-relative path; ValueError if it would leave the root."""
        pure = PurePosixPath(relative)
        if not relative or pure.is_absolute() or "\\" in relative or ".." in pure.parts:
            raise ValueError(f"path escapes the file store: {relative!r}")
        path = self.root.joinpath(*pure.parts)
        # A symlink inside the store must not lead outside it either.
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise ValueError(f"path escapes the file store: {relative!r}")
        return path

    def put(self, data: bytes, info: ImageInfo) -> str:
        """Stage `data` under its hash and return the relative path (idempotent).

        The file reaches its final name durably in `sync`, which the caller runs
        once per batch before committing rows that point at it.
        """
        if hashlib.sha256(data).hexdigest() != info.sha256:
            raise ValueError("data does not match info.sha256")
        relative = self.relative_path(info.sha256, info.extension)
        # Built from a validated hash and extension, so no traversal check is needed.
        final = self.root / relative
        if final in self._staged or (final.is_file() and final.stat().st_size == len(data)):
            return relative  # same hash, same size: already stored
        if not final.parent.is_dir():
            final.parent.mkdir(parents=True, exist_ok=True)
            self._dirty.add(self.root)  # the new shard directory is an entry of root
        temporary = final.with_name(f"{TEMP_PREFIX}{os.getpid()}-{final.name}")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
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
        if self._pending and not _syncfs(self.root):
            for temporary in self._pending:
                _fsync_path(temporary)
        for temporary, final in self._pending.items():
            os.replace(temporary, final)
            self._dirty.add(final.parent)
        self._pending.clear()
        self._staged.clear()
        if self._dirty and not _syncfs(self.root):
            for directory in sorted(self._dirty | {self.root}):
                if directory.is_dir():
                    _fsync_path(directory)
        self._dirty.clear()

    def exists(self, relative: str) -> bool:
        """True when the store holds a file at `relative`."""
        return self.absolute(relative).is_file()

    def remove(self, relative: str) -> None:
        """Delete a stored file (to roll back a failed batch); missing is fine."""
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
