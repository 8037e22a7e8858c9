"""The review session over HTTP: the queue's filters on /review and POST /api/queue/next, the
recent labels, and refusals of malformed filters."""

from __future__ import annotations

import json
import re

from tests.support.web import login


def _page_data(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="page-data">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def test_next_item_takes_the_queues_filters(client, accounts, scored):
    headers = {"X-CSRFToken": login(client, "lee")}
    listed = client.get("/api/queue?strategy=entropy&limit=50").get_json()["items"]
    wanted = listed[-1]["predicted_label"]
    expected = [i["id"] for i in listed if i["predicted_label"] == wanted]
    assert len(expected) < len(listed)
    seen = []
    body = {"strategy": "entropy", "predicted": wanted}
    while item := client.post("/api/queue/next", json=body, headers=headers).get_json()["item"]:
        seen.append(item["id"])
        client.post(f"/api/items/{item['id']}/labels", json={"label": "unsure"}, headers=headers)
    assert seen == expected
    left = client.get("/api/queue?strategy=margin&limit=50").get_json()["items"]
    given = next(i["given_label"] for i in left if i["given_label"] is not None)
    item = client.post(
        "/api/queue/next", json={"strategy": "margin", "given": given}, headers=headers
    ).get_json()["item"]
    assert item is not None and item["given_label"] == given
    assert item["id"] == next(i["id"] for i in left if i["given_label"] == given)


def test_malformed_filters_are_refused(client, accounts, scored):
    headers = {"X-CSRFToken": login(client, "lee")}
    for bad in (7, ["7"], {"a": 1}, "x" * 201):
        answer = client.post(
            "/api/queue/next", json={"strategy": "entropy", "predicted": bad}, headers=headers
        )
        assert (
            answer.status_code == 400
            and "predicted must be a class name" in answer.get_json()["error"]
        )
    assert client.get("/api/queue?given=" + "y" * 201).status_code == 400
    unknown = client.post(
        "/api/queue/next", json={"strategy": "entropy", "predicted": "seven"}, headers=headers
    )
    assert unknown.status_code == 400 and "'seven' is not a class" in unknown.get_json()["error"]


def test_the_review_page_shows_and_keeps_its_filters(client, accounts, scored):
    login(client, "lee")
    listed = client.get("/api/queue?strategy=mislabeled&limit=50").get_json()["items"]
    wanted = listed[-1]["predicted_label"]
    queue = client.get(f"/queue?strategy=mislabeled&predicted={wanted}").get_data(as_text=True)
    assert f"/review?strategy=mislabeled&amp;predicted={wanted}" in queue  # Start reviewing
    html = client.get(f"/review?strategy=mislabeled&predicted={wanted}").get_data(as_text=True)
    data = _page_data(html)
    assert data["filters"] == {"predicted": wanted, "given": None}
    assert data["item"]["predicted_label"] == wanted
    assert f"predicted {wanted}" in html and 'id="filters"' in html


def test_recent_labels_come_back_newest_first(client, accounts, scored):
    headers = {"X-CSRFToken": login(client, "lee")}
    given = []
    for label in ("1", "none_of_these"):
        item = client.post("/api/queue/next", json={}, headers=headers).get_json()["item"]
        client.post(f"/api/items/{item['id']}/labels", json={"label": label}, headers=headers)
        given.append((item["id"], label))
    recent = client.get("/api/labels/recent").get_json()["labels"]
    assert [(r["image_id"], r["label"]) for r in recent] == given[::-1]
    assert len(client.get("/api/labels/recent?limit=1").get_json()["labels"]) == 1
    page = _page_data(client.get("/review").get_data(as_text=True))
    assert [r["image_id"] for r in page["recent"]] == [i for i, _ in given[::-1]]
