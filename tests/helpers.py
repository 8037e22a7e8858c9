"""Small image makers and checks shared by the tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image


def png_bytes(seed: int = 0, size: int = 28, mode: str = "L") -> bytes:
    rng = np.random.default_rng(seed)
    channels = {"L": (size, size), "RGB": (size, size, 3)}[mode]
    img = Image.fromarray(rng.integers(0, 256, channels, dtype=np.uint8), mode=mode)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def write_png(path: Path, seed: int = 0, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png_bytes(seed, **kwargs))
    return path


def write_pngs(folder: Path, count: int, start_seed: int = 0) -> list[Path]:
    return [write_png(folder / f"img_{i:05d}.png", start_seed + i) for i in range(count)]


def same_weights(first: list, second: list) -> bool:
    """Whether two models' ``get_weights()`` lists are identical, array by array."""
    return all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
