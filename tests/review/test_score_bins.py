"""The score bins: a bin counted in Python is the range SQL reads back; the certificate's pool
counts from the bins, with thresholds splitting bins, are the counts of the definition; a
rollback or a forgotten version leaves nothing counted; a snapshot reads one state."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from sqlalchemy import delete, func, select

from reviewer.core import db, settings
from reviewer.core.schema import Image, ModelVersion, Score, ScoreBins
from reviewer.review import pool, score_bins

CLASSES = ["a", "b", "c"]


@pytest.mark.parametrize("figure", score_bins.FIGURES)
def test_a_value_is_in_the_range_of_its_bin(figure):
    lower = score_bins.edges(figure, len(CLASSES))
    assert np.all(np.diff(lower) > 0) and lower[0] == 0.0
    rng = np.random.default_rng(0)
    top = 1.0 if figure == "confidence" else math.log(len(CLASSES))
    values = [
        *rng.uniform(-0.1, top + 0.1, 500),
        *lower[::97],
        *(1 - 10.0 ** -rng.uniform(0, 12, 200)),
    ]
    if figure == "confidence":
        values += [1.0, 1.0 - 2**-24, 1 - 1e-11, 0.0, None]
    for value, b in zip(values, score_bins.bins_of(figure, len(CLASSES), values), strict=True):
        lo, hi = score_bins.bin_range(figure, len(CLASSES), int(b))
        assert lo <= (0.0 if value is None else value) < hi, (value, b, lo, hi)


def test_a_confidence_of_one_has_a_bin_of_its_own():
    found = score_bins.bins_of("confidence", 3, [1.0, 1.0 - 2**-53, 1.5])
    assert found[0] == found[2] == score_bins.CONFIDENCE_BINS - 1 and found[1] < found[0]
    assert score_bins.bin_range("confidence", 3, int(found[0])) == (1.0, math.inf)


def test_the_histogram_nests_in_the_fine_bins():
    rows = np.zeros(score_bins.UNCERTAINTY_BINS, dtype=np.int64)
    rows[[0, 127, 128, 300]] = [1, 2, 3, 4]  # the narrowest span holding bin 300: 320 bins
    whole = score_bins.histogram(rows, 3, fit=False)
    assert whole["counts"][:3] == [3, 3, 4] and whole["edges"][-1] == pytest.approx(math.log(3))
    fitted = score_bins.histogram(rows, 3, fit=True)
    assert fitted["edges"][-1] == pytest.approx(math.log(3) / 8) and sum(fitted["counts"]) == 10
    assert fitted["counts"] == [1, 0, 0, 0, 0, 0, 0, 2, 3, *[0] * 9, 4, 0]  # 16 fine bins each


def _version_with(sessions, confidences, answers) -> int:
    with sessions() as s, s.begin():
        version = ModelVersion(name="m", version=1, path="m/1", classes=CLASSES, input_spec={},
                               mc_samples=4, metrics={}, is_active=True)  # fmt: skip
        s.add(version)
        s.flush()
        for i, (confidence, answer) in enumerate(zip(confidences, answers, strict=True)):
            image = Image(sha256=f"{i:064x}", path=f"{i}.png", original_filename=f"{i}.png")
            s.add(image)
            s.flush()
            s.add(Score(image_id=image.id, model_version_id=version.id, predicted_label="a",
                        mean=[1 / 3] * 3, std=[0.0] * 3, entropy=0.5, expected_entropy=0.0,
                        mutual_info=0.1, variance=0.0, variation_ratio=0.0, margin=0.0,
                        confidence=confidence, samples=4, human_label=answer))  # fmt: skip
        return version.id


def test_interval_counts_are_the_definition_where_thresholds_split_bins(sessions):
    rng = random.Random(3)
    crowded = 0.9 + 1e-9  # hundreds of distinct values inside one fine bin, and at its edges
    lo, hi = score_bins.bin_range(
        "confidence", 3, int(score_bins.bins_of("confidence", 3, [crowded])[0])
    )
    values = [lo + (hi - lo) * rng.random() for _ in range(300)] + [lo] * 5
    values += [rng.choice([None, 0.0, 0.0004, 0.0009, 1e-6]) for _ in range(40)]  # the first bin
    values += [1.0] * 30 + [rng.uniform(0.3, 1.0) for _ in range(200)]
    answers = [rng.choice([None, None, "a", "b", "unsure"]) for _ in values]
    version_id = _version_with(sessions, values, answers)
    picked = [v for v in rng.sample(values, 60) if v is not None]
    thresholds = np.unique([*picked, lo, 0.0, 0.0004, 1.0])[::-1]
    with sessions() as s:
        version = s.get(ModelVersion, version_id)
        got = pool._interval_counts(s, version, thresholds)
        rows = s.execute(select(Score.confidence, Score.human_label, Score.predicted_label)).all()
    expected = np.zeros((len(thresholds) + 1, 3), dtype=np.int64)
    for confidence, answer, predicted in rows:  # [τ_0, ∞), [τ_1, τ_0), …, [−∞, τ_last)
        c = 0.0 if confidence is None else confidence
        interval = sum(t > c for t in thresholds)
        expected[interval] += [1, answer is not None, score_bins.is_wrong(answer, predicted)]
    assert (got == expected).all()
    assert expected[1:-1].any(axis=1).sum() > 20  # the thresholds did split the counts


def _bins(sessions) -> list[tuple]:
    with sessions() as s:
        return sorted(s.execute(select(*ScoreBins.__table__.columns)).tuples())


def test_a_rolled_back_row_is_not_counted_by_the_next_commit(sessions):
    version_id = _version_with(sessions, [0.5], ["a"])
    counted = _bins(sessions)
    with sessions() as s:
        s.begin()
        _add_score(s, version_id, 1)  # flushed, counted as pending, then rolled back
        s.flush()
        s.rollback()
        with s.begin():  # the same session commits something else
            settings.set_risk_target(s, 0.1)
    assert _bins(sessions) == counted


def test_forgetting_a_version_forgets_what_this_transaction_counted(sessions):
    version_id = _version_with(sessions, [0.5, 0.7], ["a", None])
    with sessions() as s, s.begin():
        _add_score(s, version_id, 2)
        s.flush()
        s.execute(delete(Score).where(Score.model_version_id == version_id))
        score_bins.forget_version(s, version_id)
    assert _bins(sessions) == []


def test_a_snapshot_does_not_see_a_commit_made_while_it_reads(sessions):
    version_id = _version_with(sessions, [0.5], [None])
    count = select(func.count()).select_from(Score)
    with db.snapshot(sessions) as reading:
        assert reading.scalar(count) == 1
        with sessions() as s, s.begin():
            _add_score(s, version_id, 3)
        assert reading.scalar(count) == 1
    with sessions() as s:
        assert s.scalar(count) == 2


def _add_score(s, version_id: int, i: int) -> None:
    image = Image(sha256=f"{1000 + i:064x}", path=f"x{i}.png", original_filename=f"x{i}.png")
    s.add(image)
    s.flush()
    s.add(Score(image_id=image.id, model_version_id=version_id, predicted_label="a",
                mean=[1 / 3] * 3, std=[0.0] * 3, entropy=0.5, expected_entropy=0.0,
                mutual_info=0.1, variance=0.0, variation_ratio=0.0, margin=0.0,
                confidence=0.9, samples=4))  # fmt: skip
