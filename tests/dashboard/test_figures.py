"""Dashboard figures on a small pool whose every answer was worked out by hand (SQLite, PostgreSQL).

The pool (classes "0".."2", active version digits:1; mean = confidence on the predicted class,
the rest split evenly; mutual_info = entropy / 2):

    item entropy pred conf  current labels (user:label)       human label
    r1   0.05    0    0.95  alice:0                           0     right
    r2   0.10    1    0.95  alice:1                           1     right
    r3   0.20    2    0.85  bob:2                             2     right
    r4   0.30    0    0.85  bob:1                             1     wrong
    u1   0.40    0    0.75  (alice:0, undone)                 -     not reviewed
    r5   0.50    1    0.65  alice:1 bob:2                     tie   no consensus
    r6   0.60    2    0.65  alice:2 bob:2 carol:0             2     right
    u2   0.70    1    0.60  -                                 -     not reviewed
    r7   0.80    0    0.55  carol:none_of_these               none  wrong
    r8   0.90    1    0.55  dave:2                            2     wrong
    r9   1.00    2    0.45  alice:unsure                      unsure (left out of correctness)

plus one failed image and one ok image the active version has not scored. Version digits:2 is
pending (activate_when_scored) and has scored r1..r3.

The random audit walks r1 r2 r3 r4 r6 r7 r8 r9 u1 r5 u2 (audit_key order) and waits at u1,
which has no label: the audit set is the eight items before it (errors r4 r7 r8 r9; r9 is
unsure). The queue's labels are every label without the "audit" strategy.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from reviewer.core import settings
from reviewer.core.schema import Image, Label, ModelVersion, Score, User, WorkerHeartbeat
from reviewer.dashboard.figures import dashboard_figures
from reviewer.ml.certify import TOO_FEW_ITEMS
from reviewer.review import tallies
from reviewer.review.labels import sync_review_state

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
CLASSES = ["0", "1", "2"]
# name: (entropy, predicted, confidence)
ITEMS = {
    "r1": (0.05, "0", 0.95),
    "r2": (0.10, "1", 0.95),
    "r3": (0.20, "2", 0.85),
    "r4": (0.30, "0", 0.85),
    "u1": (0.40, "0", 0.75),
    "r5": (0.50, "1", 0.65),
    "r6": (0.60, "2", 0.65),
    "u2": (0.70, "1", 0.60),
    "r7": (0.80, "0", 0.55),
    "r8": (0.90, "1", 0.55),
    "r9": (1.00, "2", 0.45),
}
WALK = ["r1", "r2", "r3", "r4", "r6", "r7", "r8", "r9", "u1", "r5", "u2"]
# (item, user, label, minutes ago, seconds)
LABELS = [
    ("r1", "alice", "0", 10, 2.0),
    ("r2", "alice", "1", 10, 4.0),
    ("r3", "bob", "2", 120, 1.0),
    ("r4", "bob", "1", 120, 3.0),
    ("r5", "alice", "1", 120, 6.0),
    ("r5", "bob", "2", 120, 5.0),
    ("r6", "alice", "2", 120, 8.0),
    ("r6", "bob", "2", 30, 9.0),
    ("r6", "carol", "0", 120, None),
    ("r7", "carol", "none_of_these", 120, 12.0),
    ("r8", "dave", "2", 120, None),
    ("r9", "alice", "unsure", 120, 10.0),
]


# fmt: off
def _version(session, version: int, **flags) -> ModelVersion:
    row = ModelVersion(name="digits", version=version, path=f"models/digits/{version}",
                       classes=CLASSES, input_spec={}, mc_samples=10, metrics={}, **flags)
    session.add(row)
    session.flush()
    return row


def _image(session, name: str, status: str = "ok") -> Image:
    sha = name.encode().hex().ljust(64, "0")
    image = Image(sha256=sha, path=f"{sha}.png", original_filename=f"{name}.png", status=status)
    session.add(image)
    session.flush()
    return image


def _score(session, image: Image, version: ModelVersion, entropy, predicted, confidence, name):
    mean = [confidence if c == predicted else (1 - confidence) / 2 for c in CLASSES]
    session.add(Score(image_id=image.id, model_version_id=version.id, predicted_label=predicted,
                      mean=mean, std=[0.0] * 3, entropy=entropy, expected_entropy=entropy / 2,
                      mutual_info=entropy / 2, variance=0.0, variation_ratio=0.0, margin=0.1,
                      confidence=confidence, audit_key=WALK.index(name), samples=10,
                      needs_review=name not in {item for item, *_ in LABELS}))


def _label(session, image, user, label, minutes_ago, seconds, undoes=None) -> Label:
    row = Label(image_id=image.id, user_id=user.id, label=label, undoes_label_id=undoes,
                labeled_at=NOW - timedelta(minutes=minutes_ago), seconds=seconds)
    session.add(row)
    session.flush()
    return row
# fmt: on


@pytest.fixture
def figures(sessions):
    with sessions() as session, session.begin():
        settings.set_risk_target(session, 0.2)
        active = _version(session, 1, is_active=True)
        pending = _version(session, 2, activate_when_scored=True)
        images = {name: _image(session, name) for name in ITEMS}
        _image(session, "failed", status="failed")
        _image(session, "unscored")
        for name, values in ITEMS.items():
            _score(session, images[name], active, *values, name)
        for name in ("r1", "r2", "r3"):
            _score(session, images[name], pending, *ITEMS[name], name)
        users = {}
        for name in ("alice", "bob", "carol", "dave"):
            users[name] = User(username=name, password_hash="x")
            session.add(users[name])
        session.flush()
        undone = _label(session, images["u1"], users["alice"], "0", 6, 1.0)
        _label(session, images["u1"], users["alice"], None, 5, None, undoes=undone.id)
        for item, user, label, minutes_ago, seconds in LABELS:
            _label(session, images[item], users[user], label, minutes_ago, seconds)
        for image in images.values():  # what every label transaction keeps in step
            sync_review_state(session, image)
        tallies.rebuild(session)  # and the running tallies, which it counts row by row
        beat = dict(worker_id="w1", host="gpu-1", pid=42, state="scoring", images_scored=3)
        beat.update(failures=1, last_seen=NOW - timedelta(seconds=30))
        session.add(WorkerHeartbeat(model_version_id=pending.id, **beat))
    with sessions() as session:
        return dashboard_figures(session, now=NOW)


def test_figures_are_plain_json(figures):
    assert json.loads(json.dumps(figures, allow_nan=False)) == figures


def test_counts(figures):
    pending = {"id": 2, "name": "digits:2", "scored": 3, "total": 12, "fraction": 0.25}
    expected = {"images": 13, "ok": 12, "failed": 1, "scored": 11, "reviewed": 9, "labels": 12}
    assert figures["counts"] == {**expected, "pending_version": pending}
    assert figures["active_version"] == {"id": 1, "name": "digits:1", "classes": CLASSES}


def test_labels_per_class_counts_current_rows_only(figures):
    assert figures["labels_per_class"] == {"0": 2, "1": 3, "2": 5, "none_of_these": 1, "unsure": 1}
    assert list(figures["labels_per_class"]) == [*CLASSES, "none_of_these", "unsure"]


def test_labels_per_class_keeps_every_class_in_order_even_without_labels(sessions):
    with sessions() as s, s.begin():
        settings.set_classes(s, ["cat", "dog", "owl"])
    with sessions() as session:
        figures = dashboard_figures(session, now=NOW)
    assert figures["labels_per_class"] == {
        "cat": 0,
        "dog": 0,
        "owl": 0,
        "none_of_these": 0,
        "unsure": 0,
    }


def test_yield_by_decile_ranks_the_seven_judged_items(figures):
    # Judged (r1 r2 r3 r4 r6 r7 r8) by entropy rank k -> decile k * 10 // 7 + 1.
    rows = {row["decile"]: row for row in figures["yield_by_decile"]}
    assert list(rows) == list(range(1, 11))
    counts = {d: (r["count"], r["errors"], r["rate"]) for d, r in rows.items()}
    one_right, one_wrong, empty = (1, 0, 0.0), (1, 1, 1.0), (0, 0, None)
    assert [counts[d] for d in range(1, 11)] == [
        one_right,
        one_right,
        one_right,
        empty,
        one_wrong,
        one_right,
        empty,
        one_wrong,
        one_wrong,
        empty,
    ]
    assert (rows[6]["entropy_min"], rows[6]["entropy_max"]) == (0.6, 0.6)


def test_histograms_and_uncertainty_by_label(figures):
    entropy = figures["histograms"]["entropy"]
    assert len(entropy["edges"]) == 21
    assert entropy["edges"][0] == 0 and entropy["edges"][-1] == pytest.approx(math.log(3))
    # Bin width log(3) / 20 = 0.0549: 0.05 -> 0, 0.1 -> 1, 0.2 -> 3, ..., 1.0 -> 18.
    filled = [i for i, c in enumerate(entropy["counts"]) if c]
    assert filled == [0, 1, 3, 5, 7, 9, 10, 12, 14, 16, 18]
    assert sum(entropy["counts"]) == 11
    mutual_info = figures["histograms"]["mutual_info"]
    # The narrowest [0, log K / 2^j) holding the largest, 0.5: log(3) / 2 = 0.549.
    assert mutual_info["edges"][-1] == pytest.approx(math.log(3) / 2)
    assert sum(mutual_info["counts"]) == 11
    means = {k: v["mean_entropy"] for k, v in figures["uncertainty_by_label"].items()}
    assert means == pytest.approx(
        {"0": 0.05, "1": 0.2, "2": 1.7 / 3, "none_of_these": 0.8, "unsure": 1.0}
    )
    assert figures["uncertainty_by_label"]["2"]["count"] == 3


def test_yield_leaves_out_the_audit_labels(figures, sessions):
    with sessions() as session, session.begin():
        r1 = session.scalar(select(Image).where(Image.original_filename == "r1.png"))
        session.execute(update(Label).where(Label.image_id == r1.id).values(strategy="audit"))
    with sessions() as session:
        again = dashboard_figures(session, now=NOW)
    assert sum(row["count"] for row in again["yield_by_decile"]) == 6  # r1 is the audit's


def test_reliability_on_the_audit_set(figures):
    # The audit's class or none answers: r1 r2 (0.95, right), r3 r4 (0.85, one right), r6 (0.65,
    # right), r7 (0.55, none_of_these: wrong), r8 (0.55, wrong); r9 (unsure) says nothing.
    reliability = figures["audit"]["reliability"]
    filled = {round(b["lower"], 1): b for b in reliability["bins"] if b["count"]}
    assert set(filled) == {0.5, 0.6, 0.8, 0.9}
    assert [filled[k]["count"] for k in (0.5, 0.6, 0.8, 0.9)] == [2, 1, 2, 2]
    assert [filled[k]["accuracy"] for k in (0.5, 0.6, 0.8, 0.9)] == [0.0, 1.0, 0.5, 1.0]
    assert filled[0.8]["confidence"] == pytest.approx(0.85)
    assert reliability["count"] == 7
    # 15 bins: |2 - 1.9| + |1 - 1.7| + |1 - 0.65| + |0 - 1.1| over 7 items.
    assert reliability["ece"] == pytest.approx(2.25 / 7)


def test_the_audit_certificate_and_its_risk_coverage_curve(figures):
    cert = figures["audit"]["certificate"]
    assert (cert["risk"], cert["confidence"]) == (0.2, 0.95)
    assert (cert["audit"], cert["audit_errors"], cert["audit_unsure"]) == (8, 4, 1)
    assert (cert["pool"], cert["unlabeled"], cert["threshold"]) == (11, 2, None)
    # Even a ninth audit item without an error would leave 1 unanswered item whose bound is
    # 1 error: no threshold can pass in so small a pool.
    assert cert["reason"] == TOO_FEW_ITEMS
    curve = figures["audit"]["curve"]
    # 0.95 and 0.85 hold no unanswered item. At 0.65: 7 items, 5 audited with 1 error, 2 known
    # errors (r4, r5's tie): the hypergeometric bound is 3 errors, 1 more in the 1 unanswered.
    # At 0.55: 10 items, 7 audited, 3 errors, 4 known: bound 6, estimate 3/7 * 10 - 4 over 2.
    assert [p["threshold"] for p in curve] == [0.65, 0.55, 0.45]
    assert [p["coverage"] for p in curve] == [0.5, 1.0, 1.0]
    assert [p["audit"] for p in curve] == [5, 7, 8]
    assert [p["estimate"] for p in curve] == pytest.approx([0.0, (30 / 7 - 4) / 2, 0.25])
    assert [p["bound"] for p in curve] == [1.0, 1.0, 1.0]


def test_labelers(figures):
    by_name = {row["username"]: row for row in figures["labelers"]}
    assert list(by_name) == ["alice", "bob", "carol", "dave"]
    keys = ("labels", "last_hour", "median_seconds", "agreement", "model_agreement")
    got = {name: tuple(row[k] for k in keys) for name, row in by_name.items()}
    # Agreement over r5 (a tie: nobody matches) and r6 (consensus "2").
    assert got == {
        "alice": (5, 2, 6.0, 0.5, 1.0),
        "bob": (4, 1, 4.0, 0.5, 0.5),
        "carol": (2, 0, 12.0, 0.0, 0.0),
        "dave": (1, 0, None, None, 0.0),
    }


def test_workers_and_backlog(figures):
    workers = figures["workers"]
    last_seen = (NOW - timedelta(seconds=30)).isoformat()
    assert workers["heartbeats"] == [
        dict(
            worker_id="w1",
            host="gpu-1",
            pid=42,
            state="scoring",
            liveness="live",  # 30 s since its last beat: within three intervals
            model_version="digits:2",
            last_seen=last_seen,
            seconds_since_seen=30.0,
            images_scored=3,
            failures=1,
        )
    ]
    # The pending version has scored 3 of the 12 ok images.
    assert (workers["backlog"], workers["backlog_version"], workers["failed"]) == (9, "digits:2", 1)


def test_backlog_of_the_active_version_without_a_pending_one(figures, sessions):
    with sessions() as session, session.begin():
        session.get(ModelVersion, 2).activate_when_scored = False
    with sessions() as session:
        again = dashboard_figures(session, now=NOW)
    assert again["counts"]["pending_version"] is None
    assert (again["workers"]["backlog"], again["workers"]["backlog_version"]) == (1, "digits:1")


def test_an_empty_database(sessions):
    with sessions() as session:
        figures = dashboard_figures(session, now=NOW)
    json.dumps(figures, allow_nan=False)
    assert figures["counts"]["images"] == 0 and figures["active_version"] is None
    assert set(figures["labels_per_class"].values()) <= {0} and figures["labelers"] == []
    assert all(row["count"] == 0 for row in figures["yield_by_decile"])
    audit = figures["audit"]
    assert audit["reliability"]["ece"] is None and audit["curve"] == []
    assert audit["certificate"]["threshold"] is None
    assert audit["certificate"]["reason"] == "no active version"
    nothing = {"heartbeats": [], "backlog": None, "backlog_version": None, "failed": 0}
    assert figures["workers"] == nothing
