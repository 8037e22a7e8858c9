"""The RGB benchmark's model: a MobileNetV2 classifier a user would bring, registered through
`reviewer register`, whose MC-dropout samples differ and match the classic recipe's."""

from __future__ import annotations

import numpy as np

from reviewer.bench import rgb


def test_the_rgb_model_registers_like_a_users_and_samples(tmp_path):
    from reviewer.ml import mc

    model, said = rgb.register_as_a_user(tmp_path, size=32)  # the smallest MobileNetV2 input
    assert "registered rgb:1" in said
    assert any(isinstance(layer, mc.MCDropout) for layer in model.layers)
    x = rgb.rgb_images(16, size=32)
    T = 200  # the tolerances below are about 3 MC standard errors at this T
    fast = mc.sample(model, x, T, seed=0)
    classic = mc.classic_sample(model, x, T)
    assert fast.shape == classic.shape == (T, 16, 10)
    assert fast.std(axis=0).mean() > 1e-3  # the T samples differ (batch norm calibrated)
    # The sampler runs the backbone once: same distribution as T full passes.
    # (random weights: the classes are close, so argmax agreement would measure MC noise)
    spread = classic.std(axis=0)
    assert np.abs(fast.mean(axis=0) - classic.mean(axis=0)).mean() < 3 * np.mean(spread) / T**0.5
    assert np.abs(fast.std(axis=0) - spread).mean() < 0.2 * spread.mean()


def test_bench_scoring_refuses_a_model_that_is_neither_rgb_nor_a_file(run_cli, tmp_path):
    result = run_cli("bench", "scoring", "--model", tmp_path / "nope.keras")
    assert result.exit_code == 2 and "no such .keras file" in result.output
