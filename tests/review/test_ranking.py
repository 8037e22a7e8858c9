"""The strategy orderings of the queue page: the strategy table, ties, the cursor, the item keys.
On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from reviewer.core.schema import Score
from reviewer.review import errors, ranking
from tests.support.pool import ITEM_KEYS

EXPECTED = {
    "entropy": (lambda sc: sc.entropy, True),
    "bald": (lambda sc: sc.mutual_info, True),
    "variance": (lambda sc: sc.variance, True),
    "margin": (lambda sc: sc.margin, False),
    "mislabeled": (lambda sc: sc.self_confidence, False),
    "ood": (lambda sc: sc.ood, True),
}


def all_scores(sessions):
    with sessions() as s:
        return {sc.image_id: sc for sc in s.scalars(select(Score))}


@pytest.mark.parametrize("strategy", list(EXPECTED))
def test_ranking_follows_the_strategy_table(sessions, pool, strategy):
    key, descending = EXPECTED[strategy]
    scores = [sc for sc in all_scores(sessions).values() if key(sc) is not None]
    expected = sorted(scores, key=lambda sc: (key(sc), sc.image_id), reverse=descending)
    with sessions() as s:
        items, _ = ranking.ranked(s, strategy, limit=100)
    assert [i["id"] for i in items] == [sc.image_id for sc in expected]
    assert items[0]["rank_value"] == pytest.approx(key(expected[0]))
    assert items[0]["strategy"] == strategy and items[0]["reason"]
    if strategy == "mislabeled":
        assert len(items) == 20  # only items with a given label


def test_variation_ratio_breaks_ties_by_entropy(sessions, pool):
    scores = list(all_scores(sessions).values())
    expected = sorted(
        scores, key=lambda sc: (sc.variation_ratio, sc.entropy, sc.image_id), reverse=True
    )
    with sessions() as s:
        items, _ = ranking.ranked(s, "variation_ratio", limit=100)
    assert [i["id"] for i in items] == [sc.image_id for sc in expected]


def test_random_is_a_stable_shuffle(sessions, pool):
    with sessions() as s:
        first = [i["id"] for i in ranking.ranked(s, "random", limit=100)[0]]
        again = [i["id"] for i in ranking.ranked(s, "random", limit=100)[0]]
    assert first == again and sorted(first) == sorted(pool["image_ids"])
    assert first != sorted(first)


def test_cursor_pages_through_everything_once(sessions, pool):
    with sessions() as s:
        whole = [i["id"] for i in ranking.ranked(s, "entropy", limit=100)[0]]
        seen, cursor = [], None
        while True:
            page, cursor = ranking.ranked(s, "entropy", limit=7, after=cursor)
            seen += [i["id"] for i in page]
            if cursor is None:
                break
    assert seen == whole


def test_item_has_the_shared_keys(sessions, pool):
    with sessions() as s:
        item = ranking.ranked(s, "bald", limit=1)[0][0]
    assert set(ITEM_KEYS) <= set(item)


def test_unknown_strategy_is_a_bad_request(sessions, pool):
    with sessions() as s, pytest.raises(errors.BadRequest, match="unknown strategy"):
        ranking.ranked(s, "loudest")
