"""Twenty and fifty labelers at once over real HTTP, against `reviewer serve` and against
gunicorn in README's production form, on SQLite and PostgreSQL, with freshly issued API tokens
(their first use writes) and with cookie sessions: no error, no timeout, no item handed twice,
one label row per accepted label, and every item's label_count equal to its current labels."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash

from reviewer.bench.labelers import Account, run_labelers, start_server, stop_server
from reviewer.core import db, settings, users
from reviewer.core.schema import Image, Label, User
from reviewer.review.labels import current_labels_query
from tests.support.env import PG_SERVER_URL, require
from tests.support.pool import add_scored_images, add_version

POOL = 700
LABELERS = 50
PASSWORD = "labeler-password"
# (labelers, auth, items each): one run is the full 20 x 15; together they fit in the pool.
RUNS = [(20, "token", 15), (20, "session", 3), (50, "token", 3), (50, "session", 3)]
THREADS = {"serve": 8, "gunicorn": 2}  # gunicorn: 2 workers x 2 threads, README's form
THINK = 0.02  # seconds between seeing an item and labeling it: busy labelers


def _deployment(url: str, root) -> dict:
    db.upgrade(url)
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    # A cheap password hash: fifty scrypt hashes would dominate the test's set-up.
    password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")
    with sessions() as s, s.begin():
        settings.set_classes(s, [str(d) for d in range(10)])
        add_scored_images(s, add_version(s), POOL, seed=3)
        for i in range(LABELERS):
            s.add(User(username=f"labeler{i:02d}", password_hash=password_hash))
    env = {
        "REVIEWER_DATABASE_URL": url,
        "REVIEWER_DATA_DIR": str(root / "images"),
        "REVIEWER_SECRET_KEY": "concurrency-secret",
    }
    return {"sessions": sessions, "engine": engine, "env": env}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def deployment(request, tmp_path):
    if request.param == "sqlite":
        made = _deployment(f"sqlite:///{tmp_path / 'reviewer.db'}", tmp_path)
        yield made
        made["engine"].dispose()
        return
    try:
        db.connect_postgres_admin(PG_SERVER_URL).close()
    except Exception as exc:  # noqa: BLE001
        require(f"PostgreSQL not reachable at {PG_SERVER_URL}: {exc}")
    with db.throwaway_postgres(PG_SERVER_URL, prefix="reviewer_load") as url:
        made = _deployment(url, tmp_path)
        yield made
        made["engine"].dispose()


def _accounts(sessions, n: int) -> list[Account]:
    """The first ``n`` labelers, each with a token issued just now (never used yet)."""
    accounts = []
    with sessions() as s, s.begin():
        for i in range(n):
            user = users.require_user(s, f"labeler{i:02d}")
            _, secret = users.create_token(s, user)
            accounts.append(Account(user.username, PASSWORD, secret))
    return accounts


def _assert_history_consistent(sessions, accepted: int) -> None:
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Label)) == accepted  # none lost or extra
        current = dict(
            s.execute(
                current_labels_query()
                .with_only_columns(Label.image_id, func.count())
                .group_by(Label.image_id)
            ).all()
        )
        counts = dict(s.execute(select(Image.id, Image.label_count)).all())
    assert all(n == 1 for n in current.values())  # one label per item: nobody doubled one
    assert {i: c for i, c in counts.items() if c} == current  # label_count follows the history


@pytest.mark.slow
@pytest.mark.parametrize("server", ["serve", "gunicorn"])
def test_many_labelers_at_once_lose_nothing(deployment, server, tmp_path):
    log_path = tmp_path / f"{server}.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below, printed on failure
    process, base = start_server(server, deployment["env"], threads=THREADS[server], log=log)
    handed_before, accepted = set(), 0
    try:
        for n, auth, items in RUNS:
            records = run_labelers(
                base, _accounts(deployment["sessions"], n), auth=auth, items=items, think=THINK
            )
            run = f"{n} labelers, {auth}; {server} exit code: {process.poll()}"
            assert [r.errors for r in records if r.errors] == [], run
            assert sum(r.timeouts for r in records) == 0, run
            assert all(len(r.accepted) == items for r in records), run
            handed = [i for r in records for i in r.handed]
            assert len(handed) == len(set(handed)) and not handed_before & set(handed), run
            handed_before |= set(handed)
            accepted += sum(len(r.accepted) for r in records)
            _assert_history_consistent(deployment["sessions"], accepted)
    finally:
        stop_server(process)
        log.close()
        # pytest shows it on failure
        print(f"{server}'s log:", log_path.read_text(errors="replace")[-4000:])
    assert accepted == sum(n * items for n, _, items in RUNS)
