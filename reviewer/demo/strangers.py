"""Non-digit images of many kinds, made here without downloads, for measuring how well the
`ood` score finds strangers among the pool's digits (``reviewer bench quality``).

`make_strangers(kind, count, seed)` gives ``count`` 28x28 uint8 images of one kind in `KINDS`;
`write_strangers` writes every kind as PNG files and says which file is which kind. The kinds
differ in character on purpose: flat images, pixel noise and smooth noise, pen strokes, shapes,
letters and symbols (Pillow's bundled font, the same on every machine), textures, crops of the
natural photographs scikit-learn ships, and four near-digit kinds made from pool digits
(inverted, rotated a quarter turn, heavily blurred, halved). The digits come from the pool side
of the split `write_demo_data` makes with the same seed, so the demo's model never trained on
them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from reviewer.demo.data import SIDE, _mnist, _outlier, _save, _split

GLYPHS = "ABCDEFGHJKLMNPQRSTUVWXYZabdefghkmnpqrtwxyz@#$%&*+=?!<>{}[]~"  # none digit-like
NEAR_DIGITS = ("inverted", "rotated", "blurred", "halved")
KINDS = (
    "blank",
    "uniform_noise",
    "smooth_noise",
    "strokes",
    "shapes",
    "glyphs",
    "textures",
    "photo_crops",
    *NEAR_DIGITS,
)


def _blank(rng) -> np.ndarray:
    """A flat grey, sometimes with faint speckle (near-blank)."""
    flat = np.full((SIDE, SIDE), float(rng.integers(0, 256)))
    if rng.random() < 0.5:
        flat += rng.normal(0, rng.uniform(2, 12), flat.shape)
    return np.clip(flat, 0, 255).astype(np.uint8)


def _smooth_noise(rng) -> np.ndarray:
    """Gaussian noise blurred into clouds and stretched to the full range."""
    noise = Image.fromarray(np.clip(rng.normal(128, 60, (SIDE, SIDE)), 0, 255).astype(np.uint8))
    cloud = np.asarray(noise.filter(ImageFilter.GaussianBlur(rng.uniform(1.0, 3.0))), float)
    cloud = (cloud - cloud.min()) / max(np.ptp(cloud), 1.0)
    return (cloud * 255).astype(np.uint8)


def _shapes(rng) -> np.ndarray:
    """One to three rectangles, ellipses or triangles, filled or outlined, white on black."""
    canvas = Image.new("L", (SIDE, SIDE), 0)
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(1, 4))):
        x0, y0 = (int(v) for v in rng.integers(1, SIDE // 2, 2))
        x1, y1 = x0 + int(rng.integers(6, SIDE // 2)), y0 + int(rng.integers(6, SIDE // 2))
        fill, width = (255, None) if rng.random() < 0.5 else (None, int(rng.integers(1, 4)))
        shape = rng.integers(0, 3)
        if shape == 0:
            draw.rectangle((x0, y0, x1, y1), fill=fill, outline=255, width=width or 1)
        elif shape == 1:
            draw.ellipse((x0, y0, x1, y1), fill=fill, outline=255, width=width or 1)
        else:
            draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=fill, outline=255)
    return np.asarray(canvas)


def _glyph(rng) -> np.ndarray:
    """A letter or symbol of Pillow's bundled font, white on black, about digit-sized."""
    font = ImageFont.load_default(int(rng.integers(16, 25)))
    canvas = Image.new("L", (SIDE, SIDE), 0)
    draw = ImageDraw.Draw(canvas)
    draw.text((SIDE / 2, SIDE / 2), str(rng.choice(list(GLYPHS))), fill=255, font=font, anchor="mm")
    return np.asarray(canvas)


def _texture(rng) -> np.ndarray:
    """Stripes, a checkerboard or a sine grating at a random angle and period."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(float)
    angle, period = rng.uniform(0, np.pi), rng.uniform(3, 10)
    along = xx * np.cos(angle) + yy * np.sin(angle)
    style = rng.integers(0, 3)
    if style == 0:
        pattern = (np.floor(along / period) % 2).astype(float)
    elif style == 1:
        pattern = ((np.floor(xx / period) + np.floor(yy / period)) % 2).astype(float)
    else:
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * along / period)
    return (pattern * 255).astype(np.uint8)


def _photos() -> list[np.ndarray]:
    from sklearn.datasets import load_sample_images  # ships its photographs: no download

    return [np.asarray(Image.fromarray(p).convert("L")) for p in load_sample_images().images]


def _photo_crop(rng, photos) -> np.ndarray:
    """A random square crop of a greyscale photograph, shrunk to 28x28."""
    photo = photos[int(rng.integers(0, len(photos)))]
    side = int(rng.integers(40, min(photo.shape) // 2))
    top, left = (int(rng.integers(0, n - side)) for n in photo.shape)
    crop = Image.fromarray(photo[top : top + side, left : left + side])
    return np.asarray(crop.resize((SIDE, SIDE), Image.Resampling.LANCZOS))


def _near_digit(kind: str, digit: np.ndarray, rng) -> np.ndarray:
    if kind == "inverted":
        return 255 - digit
    if kind == "rotated":
        return np.rot90(digit, k=1 if rng.random() < 0.5 else 3).copy()
    if kind == "blurred":
        blurred = Image.fromarray(digit).filter(ImageFilter.GaussianBlur(rng.uniform(2.5, 4.0)))
        return np.asarray(blurred)
    halved = digit.copy()  # keep one half (top, bottom, left or right), black the other
    side = int(rng.integers(0, 4))
    view = halved if side < 2 else halved.T
    if side % 2:
        view[: SIDE // 2] = 0
    else:
        view[SIDE // 2 :] = 0
    return halved


def make_strangers(kind: str, count: int, *, seed: int, n_train: int = 2000) -> np.ndarray:
    """``count`` images [count, 28, 28] uint8 of ``kind`` (one of `KINDS`), reproducible by
    ``seed``; near-digit kinds transform pool digits of the demo split with that seed."""
    if kind not in KINDS:
        raise ValueError(f"unknown stranger kind {kind!r}; choose one of {', '.join(KINDS)}")
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    rng = np.random.default_rng([seed, KINDS.index(kind)])
    if kind in NEAR_DIGITS:
        pixels, labels = _mnist()
        _, pool = _split(labels, n_train, np.random.default_rng(seed))
        if count > len(pool):
            raise ValueError(f"count must be within [0, {len(pool)}] for {kind}, got {count}")
        chosen = rng.choice(pool, size=count, replace=False)
        images = [_near_digit(kind, pixels[i], rng) for i in chosen]
    else:
        photos = _photos() if kind == "photo_crops" else None
        make = {
            "blank": _blank,
            "uniform_noise": lambda r: _outlier("noise", r),
            "smooth_noise": _smooth_noise,
            "strokes": lambda r: _outlier("strokes", r),
            "shapes": _shapes,
            "glyphs": _glyph,
            "textures": _texture,
            "photo_crops": lambda r: _photo_crop(r, photos),
        }[kind]
        images = [make(rng) for _ in range(count)]
    return np.stack(images) if images else np.zeros((0, SIDE, SIDE), np.uint8)


def write_strangers(out_dir: Path, *, count: int, seed: int, kinds=KINDS) -> dict[Path, str]:
    """Write ``count`` images of each of ``kinds`` as ``stranger_NNNNN.png`` (names reveal no
    kind) into ``out_dir`` (created if needed; a file is never overwritten). Returns
    {path: kind}."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written, number = {}, 0
    for kind in kinds:
        for pixels in make_strangers(kind, count, seed=seed):
            path = out_dir / f"stranger_{number:05d}.png"
            _save(pixels, path)
            written[path], number = kind, number + 1
    return written
