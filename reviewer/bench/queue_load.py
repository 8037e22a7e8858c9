"""Benchmark data for ``reviewer bench queue``: a large, realistic, labeled pool, fast.

This module owns making the pool the queue benchmark measures against: N images,
one active model version, N scores rows whose metrics come from random softmax
vectors over ten classes, about half of the images labeled once (the more
uncertain an image, the likelier it was labeled, as in real use), the users, and
20 live review leases on the heads of the strategies. Rows are generated in
chunks with numpy and written by the driver, not the ORM: one ``executemany``
transaction with ``synchronous=OFF`` on SQLite, ``COPY`` on PostgreSQL, with the
secondary indexes dropped during the load and rebuilt after it, then the database
is settled before anything is timed (PostgreSQL: VACUUM ANALYZE and a CHECKPOINT, so
autovacuum and the checkpointer are not still working through the fresh million rows
while latencies are measured; SQLite: ANALYZE and a WAL checkpoint).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import make_url

from reviewer.core import db, settings, strategies, users
from reviewer.core.schema import Base, ModelVersion, ReviewLease, User, random_key
from reviewer.demo.data import DIGITS
from reviewer.review import leases, ranking, tallies

CHUNK = 50_000
AUDIT_ITEMS = 2_000  # labeled through the audit, in its walk order: the certificate's sample
HISTORY_USERS = 5
PASSWORD = "bench-password"
NOW = "2026-01-01 00:00:00.000000"
IMAGE_COLS = "id, sha256, path, original_filename, width, height, mode, source, given_label, status, label_count, created_at, audit_key"  # noqa: E501
SCORE_COLS = "id, image_id, model_version_id, predicted_label, mean, std, entropy, expected_entropy, mutual_info, variance, variation_ratio, margin, self_confidence, normalized_margin, ood, samples, random_key, batchbald_key, needs_review, scored_at, confidence, audit_key, human_label"  # noqa: E501
LABEL_COLS = "id, image_id, user_id, label, model_version_id, labeled_at, seconds, strategy"
BULK_TABLES = ("images", "scores", "labels")


VECTOR = "[" + ",".join(["%.5f"] * len(DIGITS)) + "]"


def _vectors(values: np.ndarray) -> list[str]:
    return [VECTOR % tuple(row) for row in values.tolist()]


def chunk_rows(
    rng, start: int, count: int, version_id: int, user_ids: list[int], *, pool_size: int
):
    """(images, scores, labels) row tuples for image ids ``start`` .. ``start + count - 1`` of
    a pool of ``pool_size``; the first AUDIT_ITEMS of the audit's walk (about) are its labels."""
    ids, rows, k = np.arange(start, start + count), np.arange(count), len(DIGITS)
    logits = rng.normal(0, 1, (count, k)) * rng.uniform(0.5, 6.0, (count, 1))
    mean = np.exp(logits - logits.max(1, keepdims=True))
    mean /= mean.sum(1, keepdims=True)
    std = mean * (1 - mean) * rng.uniform(0.1, 1.0, (count, 1))
    order = np.argsort(-mean, axis=1)
    top, second = mean[rows, order[:, 0]], mean[rows, order[:, 1]]
    entropy = -(mean * np.log(mean + 1e-12)).sum(1)
    expected = entropy * rng.uniform(0.5, 0.95, count)
    wrong = rng.random(count) < 0.1
    given = np.where(wrong, rng.integers(0, k, count), order[:, 0])
    has_given = rng.random(count) < 0.9
    confidence = np.where(has_given, mean[rows, given], np.nan)
    other = np.where(given == order[:, 0], second, top)
    spread = np.clip(entropy / np.log(k) + rng.normal(0, 0.05, count), 0, 0.9)
    # The more uncertain, the likelier a labeler has already seen it (about half overall).
    labeled = rng.random(count) < 0.2 + 0.6 * np.clip(entropy / np.log(k) * 1.6, 0, 1)
    names = np.asarray(DIGITS, dtype=object)
    given_names = np.where(has_given, names[given], None).tolist()
    predicted = names[order[:, 0]].tolist()
    shas = [f"{i:064x}" for i in ids.tolist()]
    audit = rng.integers(0, 2**62, count)  # the random audit's walk order
    by_audit = audit < 2**62 * min(0.01, AUDIT_ITEMS / pool_size)  # 1% of a small pool
    labeled |= by_audit
    audit = audit.tolist()
    seconds = rng.lognormal(1.2, 0.6, count).round(2).tolist()
    images = [
        (i, sha, f"{sha[:2]}/{sha}.png", f"img_{i}.png", 28, 28, "L", "bench", g, "ok", n, NOW, a)
        for i, sha, g, n, a in zip(
            ids.tolist(), shas, given_names, labeled.astype(int).tolist(), audit, strict=True
        )
    ]
    nullable = lambda a: [None if np.isnan(x) else x for x in a.tolist()]  # noqa: E731
    labels_given = zip(given_names, predicted, labeled.tolist(), strict=True)
    answers = [g or p if n else None for g, p, n in labels_given]
    strategy = np.where(by_audit, strategies.AUDIT, None).tolist()
    columns = zip(
        ids.tolist(), predicted, _vectors(mean), _vectors(std), entropy.tolist(),
        expected.tolist(), (entropy - expected).tolist(), (std[rows, order[:, 0]] ** 2).tolist(),
        (np.round(spread * 20) / 20).tolist(), (top - second).tolist(), nullable(confidence),
        nullable(confidence - other), rng.lognormal(0, 1, count).tolist(), (~labeled).tolist(),
        strict=True,
    )  # fmt: skip
    # batchbald_key = mutual_info: no BatchBALD batch (the strategy walks BALD's order).
    scores = [
        (c[0], c[0], version_id, *c[1:13], 20, random_key(c[0]), c[6], c[13], NOW, t, a, h)
        for c, t, a, h in zip(columns, top.tolist(), audit, answers, strict=True)
    ]
    labels = [
        (i, user_ids[i % len(user_ids)], answer, version_id, NOW, spent, strategy)
        for i, answer, spent, strategy in zip(ids.tolist(), answers, seconds, strategy, strict=True)
        if answer is not None
    ]
    return images, scores, labels


def _setup(url: str, *, labelers: int) -> tuple[int, list[int], list[int]]:
    """Schema, classes, model version and users through the ORM; (version, history, labelers)."""
    db.upgrade(url)
    engine = db.make_engine(url)
    with db.session_factory(engine)() as s, s.begin():
        settings.set_classes(s, DIGITS)
        version = ModelVersion(
            name="bench", version=1, path="models/bench/1", classes=DIGITS,
            input_spec={"height": 28, "width": 28, "channels": 1}, mc_samples=20, is_active=True,
        )  # fmt: skip
        s.add(version)
        # One password hash for all (scrypt costs ~0.1 s each); logins still check it.
        hashed = users.hash_password(PASSWORD)
        history = [User(username=f"history{i}", password_hash=hashed) for i in range(HISTORY_USERS)]
        people = [User(username=f"labeler{i:02d}", password_hash=hashed) for i in range(labelers)]
        s.add_all(history + people)
        s.flush()
        ids = version.id, [u.id for u in history], [u.id for u in people]
    engine.dispose()
    return ids


def _bulk_indexes():
    return [ix for name in BULK_TABLES for ix in Base.metadata.tables[name].indexes]


def _load_sqlite(url: str, rows: int, version_id: int, user_ids: list[int]) -> None:
    conn = sqlite3.connect(make_url(url).database, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    for ix in _bulk_indexes():
        conn.execute(f"DROP INDEX {ix.name}")
    conn.execute("BEGIN")
    rng, label_id = np.random.default_rng(0), 1
    for start in range(1, rows + 1, CHUNK):
        images, scores, labels = chunk_rows(
            rng, start, min(CHUNK, rows + 1 - start), version_id, user_ids, pool_size=rows
        )
        conn.executemany(f"INSERT INTO images ({IMAGE_COLS}) VALUES ({','.join('?' * 13)})", images)
        conn.executemany(f"INSERT INTO scores ({SCORE_COLS}) VALUES ({','.join('?' * 23)})", scores)
        labels = [(label_id + n, *row) for n, row in enumerate(labels)]
        label_id += len(labels)
        conn.executemany(f"INSERT INTO labels ({LABEL_COLS}) VALUES ({','.join('?' * 8)})", labels)
    conn.execute("COMMIT")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.close()


def _load_postgres(url: str, rows: int, version_id: int, user_ids: list[int]) -> None:
    import psycopg

    u = make_url(url)
    with psycopg.connect(host=u.host, port=u.port or 5432, user=u.username, dbname=u.database) as c:
        for ix in _bulk_indexes():
            c.execute(f"DROP INDEX {ix.name}")
        rng, label_id = np.random.default_rng(0), 1
        for start in range(1, rows + 1, CHUNK):
            images, scores, labels = chunk_rows(
                rng, start, min(CHUNK, rows + 1 - start), version_id, user_ids, pool_size=rows
            )
            labels = [(label_id + n, *row) for n, row in enumerate(labels)]
            label_id += len(labels)
            for table, cols, data in (
                ("images", IMAGE_COLS, images),
                ("scores", SCORE_COLS, scores),
                ("labels", LABEL_COLS, labels),
            ):
                with c.cursor().copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                    for row in data:
                        copy.write_row(row)
        for table in BULK_TABLES:  # explicit ids were written: move the sequences past them
            c.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )


def _finish(url: str, holders: list[int]) -> None:
    """Rebuild the indexes, settle the database, and give each labeler a live lease on a
    strategy's head."""
    engine = db.make_engine(url)
    with engine.begin() as conn:
        for ix in _bulk_indexes():
            ix.create(conn)
    with db.write_transaction(db.session_factory(engine)) as s:  # rows written by the driver
        tallies.rebuild(s)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("VACUUM ANALYZE"))
            conn.execute(text("CHECKPOINT"))
        else:
            conn.execute(text("ANALYZE"))
    factory = db.session_factory(engine)
    with db.write_transaction(factory) as s:
        for i, user_id in enumerate(holders):
            strategy = strategies.STRATEGIES[i % len(strategies.STRATEGIES)]
            items, _ = ranking.ranked(s, strategy, limit=len(holders))
            free = next(it["id"] for it in items if s.get(ReviewLease, it["id"]) is None)
            leases.take_lease(s, free, user_id, lease_seconds=3600)
    engine.dispose()
    if engine.dialect.name == "sqlite":  # no connection of the engine left open: a full one
        with contextlib.closing(sqlite3.connect(make_url(url).database)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def load(url: str, *, rows: int, labelers: int) -> dict:
    """Create and fill the database at ``url``; returns timings and the labelers' names."""
    start = time.perf_counter()
    version_id, history, people = _setup(url, labelers=labelers)
    loader = _load_sqlite if make_url(url).get_backend_name() == "sqlite" else _load_postgres
    loader(url, rows, version_id, history)
    loaded = time.perf_counter()
    _finish(url, people)
    done = time.perf_counter()
    return {
        "rows": rows,
        "load_s": loaded - start,
        "index_analyze_s": done - loaded,
        "total_s": done - start,
        "labelers": [f"labeler{i:02d}" for i in range(labelers)],
    }
