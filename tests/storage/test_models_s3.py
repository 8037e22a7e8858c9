"""Model versions on S3 (a real S3-protocol server on loopback): numbers claimed without an
atomic rename, the card written last, a local cache by version; and a real Keras model
registered through `reviewer register` as a user would, then loaded and used by the worker."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from reviewer.core.objects import ObjectStore
from reviewer.core.schema import Score
from reviewer.ingest import run_ingest
from reviewer.training import object_versions, registry
from tests.support.images import write_pngs
from tests.support.s3 import keys, s3_client

CARD = {"name": "m", "classes": ["a", "b"], "mc_samples": 3, "metrics": {}, "ood": None}


def write(model_dir, payload=b"weights"):
    card = {**CARD, "input_spec": registry.input_spec(8, 8, 1)}
    return registry.write_version(model_dir, card, lambda p: p.write_bytes(payload))


def test_writers_at_once_get_distinct_numbers_and_a_claim_without_a_card_is_skipped(
    s3_config, bucket, s3_endpoint
):
    with ThreadPoolExecutor(4) as pool:
        written = list(pool.map(lambda i: write(s3_config.model_dir, b"w%d" % i), range(4)))
    assert sorted(card["version"] for card, _ in written) == [1, 2, 3, 4]
    for card, url in written:
        assert url == f"{s3_config.model_dir}/m/{card['version']}"
        assert registry.read_card(url)["version"] == card["version"]
    stored = keys(s3_endpoint, bucket, "models/m/1/")
    assert stored == ["models/m/1/.claim", "models/m/1/card.json", "models/m/1/model.keras"]

    # A writer that crashed after claiming 5: its number is never reused, and it cannot load.
    s3_client(s3_endpoint).put_object(Bucket=bucket, Key="models/m/5/.claim", Body=b"")
    assert registry.next_version(s3_config.model_dir, "m") == 6
    assert write(s3_config.model_dir)[0]["version"] == 6
    with pytest.raises(registry.RegistryError, match="no card.json"):
        registry.read_card(f"{s3_config.model_dir}/m/5")


def test_a_version_is_fetched_once_and_then_loaded_from_the_cache(s3_config, bucket, s3_endpoint):
    card, url = write(s3_config.model_dir, b"the weights")
    folder = registry.version_folder(url)
    assert (folder / registry.MODEL_FILE).read_bytes() == b"the weights"
    assert not (folder / object_versions.CLAIM_FILE).exists()
    client = s3_client(s3_endpoint)
    for key in keys(s3_endpoint, bucket, "models/"):
        client.delete_object(Bucket=bucket, Key=key)
    assert registry.version_folder(url) == folder  # a version never changes: no second fetch
    assert registry.read_card(url) == card


@pytest.mark.slow
def test_a_registered_keras_model_loads_from_s3_and_scores(
    s3_config, s3_cli, sessions, tmp_path, bucket, s3_endpoint
):
    if not s3_config.is_sqlite:
        pytest.skip("TensorFlow paths run once, on SQLite")
    import keras

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(16, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(tmp_path / "m.keras")
    result = s3_cli(
        "register", tmp_path / "m.keras", "--name", "mine", "--samples", 6, "--activate"
    )
    assert result.exit_code == 0, result.output
    assert f"at {s3_config.model_dir}/mine/1" in result.output
    assert "models/mine/1/model.keras" in keys(s3_endpoint, bucket, "models/")

    run_ingest(
        sessions, ObjectStore(s3_config.data_dir), write_pngs(tmp_path / "in", 5), max_pixels=10**7
    )
    result = s3_cli("worker", "--once")
    assert result.exit_code == 0, result.output
    with sessions() as session:
        scores = session.scalars(select(Score)).all()
    assert len(scores) == 5 and {s.samples for s in scores} == {6}
    assert len({round(s.entropy, 6) for s in scores}) > 1  # real, image-dependent samples
