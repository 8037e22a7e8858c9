"""Malformed input to the API and the admin pages: every case a 400 (or a refused form) with a
message, never a 500, and nothing changed."""

from __future__ import annotations

import base64
import json

import pytest

from reviewer.core import settings
from tests.support.web import login


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


BAD_CURSORS = [
    _b64(b"5"),  # "NQ==": a base64 int
    _b64(b"null"),
    _b64(json.dumps([{"a": 1}, 5]).encode()),
    _b64(json.dumps([[1, 2], [3]]).encode()),
    _b64(json.dumps([10**40, 1]).encode()),
    _b64(_deep(15_000).encode()),
    _b64(json.dumps(["x", 1]).encode()),
    _b64(json.dumps([True, 1]).encode()),
    _b64(b"[1e999, 1]"),
    "!!!not base64!!!",
    "A" * 5_000,
]


@pytest.fixture
def api(client, accounts, scored):
    """The CSRF header of a logged-in labeler's API calls."""
    return {"X-CSRFToken": login(client, "lee")}


@pytest.mark.parametrize("cursor", BAD_CURSORS, ids=range(len(BAD_CURSORS)))
def test_bad_cursors_are_400(client, api, cursor):
    reply = client.get("/api/queue", query_string={"cursor": cursor})
    assert reply.status_code == 400 and "cursor" in reply.get_json()["error"]
    page = client.get("/queue", query_string={"cursor": cursor})
    assert page.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        _deep(15_000),
        '{"strategy": ' + _deep(40) + "}",
        "[1, 2]",
        '"a string"',
        "{not json",
        "\xff\xfe",
    ],
)
def test_bad_json_bodies_are_400(client, api, body):
    reply = client.post(
        "/api/queue/next", data=body, headers={**api, "Content-Type": "application/json"}
    )
    assert reply.status_code == 400 and reply.get_json()["error"]


@pytest.mark.parametrize(
    "seconds",
    [10**400, -1, 1e309, float("nan"), "3", True, [1], 86_400],
    ids=["huge", "negative", "inf", "nan", "string", "bool", "list", "a-day"],
)
def test_bad_seconds_are_400(client, api, scored, seconds):
    item = client.post("/api/queue/next", json={}, headers=api).get_json()["item"]
    raw = json.dumps({"label": "3", "seconds": seconds})
    reply = client.post(
        f"/api/items/{item['id']}/labels",
        data=raw,
        headers={**api, "Content-Type": "application/json"},
    )
    assert reply.status_code == 400 and "seconds" in reply.get_json()["error"]


@pytest.mark.parametrize("path", ["/api/items/{}", "/api/items/{}/labels/undo", "/items/{}"])
def test_item_ids_beyond_the_database_are_400(client, api, path):
    huge = "9" * 30
    method = client.post if path.endswith("undo") else client.get
    reply = method(path.format(huge), headers=api)
    assert reply.status_code == 400


@pytest.mark.parametrize("limit", ["0", "201", "-5", "9" * 40, "1e3", "abc"])
def test_bad_limits_are_400(client, api, limit):
    assert client.get("/api/queue", query_string={"limit": limit}).status_code == 400


def test_unknown_strategies_are_400(client, api):
    for strategy in ("x", "", "entropy; DROP TABLE images", "../../etc"):
        assert client.get("/api/queue", query_string={"strategy": strategy}).status_code == 400
    for strategy in (5, ["entropy"], {"a": 1}):
        reply = client.post("/api/queue/next", json={"strategy": strategy}, headers=api)
        assert reply.status_code == 400


def test_admin_settings_refuse_absurd_values(client, accounts, sessions):
    token = login(client, "ada")
    for labels, risk in (("1" + "0" * 30, "0.05"), ("0", "0.05"), ("2", "nan"), ("2", "1e400")):
        form = {"labels_per_item": labels, "risk_target": risk, "csrf_token": token}
        reply = client.post("/admin/settings", data=form, follow_redirects=True)
        assert reply.status_code == 200 and "Not saved" in reply.get_data(as_text=True)
    with sessions() as s:
        assert settings.get_labels_per_item(s) == 1
