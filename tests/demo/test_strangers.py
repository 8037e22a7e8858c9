"""The strangers `bench quality` measures `ood` on: every kind, reproducible, distinct."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reviewer.demo import strangers
from reviewer.demo.data import _mnist


@pytest.mark.parametrize("kind", strangers.KINDS)
def test_each_kind_is_reproducible_28x28_uint8_and_varied(kind):
    images = strangers.make_strangers(kind, 12, seed=3)
    assert images.shape == (12, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(images, strangers.make_strangers(kind, 12, seed=3))
    assert not np.array_equal(images, strangers.make_strangers(kind, 12, seed=4))
    assert len({image.tobytes() for image in images}) > 6  # not one image twelve times


def test_kinds_differ_from_each_other_and_near_digits_come_from_pool_digits():
    means = {k: strangers.make_strangers(k, 40, seed=0).mean() for k in strangers.KINDS}
    assert means["inverted"] > 150 > means["halved"]  # white paper, and half a digit's ink
    inverted = strangers.make_strangers("inverted", 5, seed=0)
    pixels, _ = _mnist()
    originals = {(255 - image).tobytes() for image in inverted}
    assert originals <= {digit.tobytes() for digit in pixels}  # 255 - a real digit


def test_write_strangers_names_reveal_no_kind_and_never_overwrite(tmp_path):
    written = strangers.write_strangers(tmp_path, count=2, seed=0, kinds=("blank", "glyphs"))
    assert [p.name for p in written] == [f"stranger_{i:05d}.png" for i in range(4)]
    assert list(written.values()) == ["blank", "blank", "glyphs", "glyphs"]
    first = next(iter(written))
    np.testing.assert_array_equal(
        np.asarray(Image.open(first)), strangers.make_strangers("blank", 1, seed=0)[0]
    )
    with pytest.raises(FileExistsError):
        strangers.write_strangers(tmp_path, count=1, seed=0, kinds=("blank",))


def test_bad_requests_are_refused():
    with pytest.raises(ValueError, match="unknown stranger kind 'cats'"):
        strangers.make_strangers("cats", 1, seed=0)
    with pytest.raises(ValueError, match="count must be >= 0"):
        strangers.make_strangers("blank", -1, seed=0)
    assert strangers.make_strangers("shapes", 0, seed=0).shape == (0, 28, 28)
