"""Every dashboard figure the database counts, against a plain Python computation of the same
definition written here, on a random pool with every kind of answer: ties, unsure,
none_of_these, undone labels, the audit's labels, failed images with scores, images the
version trained on, labels without a time. The definitions (docs/architecture.md):

- an item's current labels are the label rows nobody cancelled; its consensus is their
  majority (a tie has none); its answer is the consensus, ``unsure`` for a tie;
- the pool is every ok image the active version scored and did not train on; an answer is
  wrong when it is not the version's prediction; the audit set is the pool's items before the
  walk's frontier (the first ok scored item, in audit-key order, that still needs labels).
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import select

from reviewer.core import settings, strategies
from reviewer.core.schema import Image, Label, ModelVersion, Score, User
from reviewer.dashboard.figures import dashboard_figures
from reviewer.ml import certify, evaluation
from reviewer.review import labels as label_history
from reviewer.review import progress

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CLASSES = ["a", "b", "c"]
ANSWERS = [*CLASSES, "none_of_these", "unsure"]
N = 160


def _build(sessions, seed: int) -> None:
    rng = random.Random(seed)
    with sessions() as s, s.begin():
        settings.set_classes(s, CLASSES)
        settings.set_risk_target(s, 0.3)
        version = ModelVersion(name="m", version=1, path="m/1", classes=CLASSES, input_spec={},
                               mc_samples=10, metrics={}, is_active=True)  # fmt: skip
        users = [User(username=f"u{i}", password_hash="x") for i in range(5)]
        s.add_all([version, *users])
        s.flush()
        images = []
        for i in range(N):
            status = "failed" if i % 37 == 5 else "ok"
            image = Image(sha256=f"{i:064x}", path=f"{i}.png", original_filename=f"{i}.png",
                          status=status, audit_key=rng.randrange(2**40))  # fmt: skip
            s.add(image)
            images.append(image)
        s.flush()
        for image in images[:-7]:  # the last seven are not scored
            predicted = rng.choice(CLASSES)
            confidence = None if rng.random() < 0.03 else round(rng.uniform(0.3, 1.0), 2)
            entropy = round(rng.uniform(0, 1.1), 3)
            s.add(Score(image_id=image.id, model_version_id=version.id, predicted_label=predicted,
                        mean=[1 / 3] * 3, std=[0.0] * 3, entropy=entropy, expected_entropy=0.0,
                        mutual_info=entropy / 2, variance=0.0, variation_ratio=0.0, margin=0.0,
                        confidence=confidence, audit_key=image.audit_key, samples=10))  # fmt: skip
        version.trained_on = [images[i].sha256 for i in rng.sample(range(N), 12)]
        s.flush()
        walk = sorted(images, key=lambda image: image.audit_key)
        for rank, image in enumerate(walk[:110]):
            by_audit = rank < 40  # the walk's first items, answered through the audit
            for user in rng.sample(users, rng.choice([1, 1, 1, 2, 3])):
                _give(s, rng, image, user, version, by_audit)
        s.flush()


def _give(s, rng, image, user, version, by_audit) -> None:
    row = label_history.give(
        s, image, user.id, rng.choice(ANSWERS), model_version_id=version.id,
        seconds=None if rng.random() < 0.1 else round(rng.uniform(0.5, 20), 3),
        strategy=strategies.AUDIT if by_audit else strategies.STRATEGIES[0],
    )  # fmt: skip
    row.labeled_at = NOW - timedelta(minutes=rng.choice([5, 30, 90, 600]))
    if rng.random() < 0.08:  # undone, then perhaps answered again
        label_history.undo_last(s, image, user.id)
        if rng.random() < 0.5:
            again = label_history.give(s, image, user.id, rng.choice(ANSWERS),
                                       model_version_id=version.id, seconds=3.0)  # fmt: skip
            again.labeled_at = NOW - timedelta(minutes=2)


def _consensus(labels: list[str]) -> str | None:
    counts = Counter(labels).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def _read(sessions):
    """Everything as plain rows: the definitions below read nothing else."""
    with sessions() as s:
        version = s.scalars(select(ModelVersion)).one()
        images = {i.id: i for i in s.scalars(select(Image))}
        scores = {r.image_id: r for r in s.scalars(select(Score))}
        rows = list(s.scalars(select(Label).order_by(Label.id)))
        users = {u.id: u.username for u in s.scalars(select(User))}
        s.expunge_all()
        figures = dashboard_figures(s, now=NOW)
    cancelled = {r.undoes_label_id for r in rows if r.undoes_label_id is not None}
    current = [r for r in rows if r.label is not None and r.id not in cancelled]
    by_image = defaultdict(list)
    for r in current:
        by_image[r.image_id].append(r)
    return version, images, scores, current, by_image, users, figures


@pytest.fixture(params=[1, 2])
def pool(sessions, request):
    _build(sessions, request.param)
    return _read(sessions)


def test_counts_and_labels_per_class(pool):
    _, images, scores, current, by_image, _, figures = pool
    ok = [i for i, image in images.items() if image.status == "ok"]
    counts = figures["counts"]
    assert counts["images"] == len(images) and counts["ok"] == len(ok)
    assert counts["failed"] == len(images) - len(ok)
    assert counts["scored"] == sum(i in scores for i in ok)
    assert (counts["reviewed"], counts["labels"]) == (len(by_image), len(current))
    given = Counter(r.label for r in current)
    assert figures["labels_per_class"] == {name: given[name] for name in ANSWERS}


def test_queue_page_progress(pool, sessions):
    _, images, scores, _, by_image, _, _ = pool
    ok = [i for i, image in images.items() if image.status == "ok"]
    assert any(images[i].status != "ok" for i in by_image)  # labeled failed images are left out
    with sessions() as s:
        got = progress.progress(s)
    reviewed = sum(i in by_image for i in ok)
    assert got == dict(total=len(ok), scored=sum(i in scores for i in ok), reviewed=reviewed,
                       pending_version=None)  # fmt: skip


def test_yield_and_uncertainty_by_label(pool):
    _, _, scores, _, by_image, _, figures = pool
    human = {i: _consensus([r.label for r in given]) for i, given in by_image.items()}
    by_audit = {i for i, given in by_image.items() if any(r.strategy == "audit" for r in given)}
    judged = sorted(
        (scores[i].entropy, i)
        for i, label in human.items()
        if label not in (None, "unsure") and i in scores and i not in by_audit
    )
    expected = []
    for d in range(10):
        members = [(e, i) for rank, (e, i) in enumerate(judged) if rank * 10 // len(judged) == d]
        errors = sum(human[i] != scores[i].predicted_label for _, i in members)
        expected.append(dict(
            decile=d + 1, count=len(members), errors=errors,
            rate=errors / len(members) if members else None,
            entropy_min=min(e for e, _ in members) if members else None,
            entropy_max=max(e for e, _ in members) if members else None,
        ))  # fmt: skip
    assert figures["yield_by_decile"] == expected
    entropy = defaultdict(list)
    for i, label in human.items():
        if label is not None and i in scores:
            entropy[label].append(scores[i].entropy)
    got = figures["uncertainty_by_label"]
    assert list(got) == sorted(entropy)
    for label, values in entropy.items():
        assert got[label]["count"] == len(values)
        assert got[label]["mean_entropy"] == pytest.approx(statistics.fmean(values))


def test_histograms(pool):
    version, _, scores, _, _, _, figures = pool
    # Entropy over [0, log K); mutual information over the narrowest [0, log K / 2^j), j <= 7,
    # that holds its largest value.
    top = max(r.mutual_info for r in scores.values())
    halvings = max(j for j in range(8) if top < math.log(len(CLASSES)) / 2**j)
    ranges = {
        "entropy": math.log(len(CLASSES)),
        "mutual_info": math.log(len(CLASSES)) / 2**halvings,
    }
    for name, upper in ranges.items():
        width = upper / 20  # a value's bin is floor(value / width); the top one is in the last
        bins = Counter(min(math.floor(getattr(r, name) / width), 19) for r in scores.values())
        got = figures["histograms"][name]
        assert got["counts"] == [bins[i] for i in range(20)], name
        assert got["edges"] == pytest.approx([width * i for i in range(21)]), name


def test_labelers(pool):
    _, _, scores, current, by_image, users, figures = pool
    human = {i: _consensus([r.label for r in given]) for i, given in by_image.items()}
    expected = []
    for user_id, name in sorted(users.items(), key=lambda item: item[1]):
        mine = [r for r in current if r.user_id == user_id]
        timed = [math.floor(r.seconds * 10 + 0.5) / 10 for r in mine if r.seconds is not None]
        peers = [r.label == human[r.image_id] for r in mine if len(by_image[r.image_id]) >= 2]
        model = [
            r.label == scores[r.image_id].predicted_label
            for r in mine
            if r.image_id in scores and r.label != "unsure"
        ]
        expected.append(dict(
            user_id=user_id, username=name, labels=len(mine),
            last_hour=sum(r.labeled_at.replace(tzinfo=UTC) >= NOW - timedelta(hours=1)
                          for r in mine),
            median_seconds=statistics.median(timed) if timed else None,
            agreement=sum(peers) / len(peers) if peers else None,
            model_agreement=sum(model) / len(model) if model else None,
        ))  # fmt: skip
    assert [row.keys() for row in figures["labelers"]] == [row.keys() for row in expected]
    for got, want in zip(figures["labelers"], expected, strict=True):
        assert got == pytest.approx(want), want["username"]


def test_the_audit_figures(pool):
    version, images, scores, _, by_image, _, figures = pool
    trained = set(version.trained_on)
    answer = {i: _consensus([r.label for r in given]) or "unsure" for i, given in by_image.items()}
    ok_scored = [i for i in scores if images[i].status == "ok"]
    waiting = [images[i].audit_key for i in ok_scored if len(by_image.get(i, [])) < 1]
    frontier = min(waiting) if waiting else 2**63
    pool_ids = sorted(i for i in ok_scored if images[i].sha256 not in trained)
    confidence = np.array([scores[i].confidence or 0.0 for i in pool_ids])
    answered = np.array([i in answer for i in pool_ids])
    wrong = np.array(
        [
            i in answer
            and (answer[i] in settings.SPECIAL_LABELS or answer[i] != scores[i].predicted_label)
            for i in pool_ids
        ]
    )
    audited = np.array([images[i].audit_key < frontier for i in pool_ids]) & answered
    assert audited.sum() > 20 and (~answered).sum() > 20  # the pool has both
    cert = certify.certify(confidence, answered, wrong, audited, alpha=0.3, delta=0.05)
    got = figures["audit"]["certificate"]
    unsure = np.array([answer.get(i) == "unsure" for i in pool_ids])
    assert (got["pool"], got["unlabeled"], got["audit"]) == (
        len(pool_ids),
        int((~answered).sum()),
        int(audited.sum()),
    )
    assert (got["audit_errors"], got["audit_unsure"]) == (
        int((audited & wrong).sum()),
        int((audited & unsure).sum()),
    )
    assert (got["threshold"], got["bound"], got["accepted"], got["reason"]) == (
        cert.threshold,
        cert.bound,
        cert.accepted,
        cert.reason,
    )
    curve = certify.risk_curve(confidence, answered, wrong, audited, delta=0.05)
    assert len(figures["audit"]["curve"]) == len(curve) > 0
    for got_point, point in zip(figures["audit"]["curve"], curve, strict=True):
        assert got_point == pytest.approx(point)
    judged = audited & ~unsure
    reliability = figures["audit"]["reliability"]
    assert reliability["count"] == int(judged.sum())
    expected_bins = evaluation.reliability_bins(np.clip(confidence[judged], 0, 1), ~wrong[judged])
    assert len(reliability["bins"]) == len(expected_bins)
    for got_bin, want_bin in zip(reliability["bins"], expected_bins, strict=True):
        assert got_bin == pytest.approx(want_bin)
