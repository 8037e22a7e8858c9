"""Security of the web app: traversal, escaping, upload limits, roles, disabling, CSRF."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import update

from reviewer.core import users
from reviewer.core.files import FileStore
from reviewer.core.schema import Image
from tests.support.images import png_bytes
from tests.support.web import add_scored_items, csrf_from, login


@pytest.mark.parametrize(
    "path",
    [
        "/images/../config.py",
        "/images/..%2F..%2Fconfig.py",
        "/images/%2e%2e/%2e%2e/etc/passwd",
        "/images/..%5c..%5cconfig.py",
        "/images/" + "a" * 64,  # well-formed but not in the images table
        "/images/" + "A" * 64,
        "/images/" + "a" * 63,
        "/images/" + "a" * 64 + ".png",
        "/images/secret_key",
        "/images/reviewer.db",
        "/images/",
        "/images",
    ],
)
def test_images_route_serves_nothing_but_known_digests(client, accounts, scored, path):
    login(client, "lee")
    response = client.get(path)
    assert response.status_code in (404, 308), path
    assert b"test-secret" not in response.data and b"SQLite" not in response.data


def test_images_with_a_row_pointing_outside_the_store_are_not_served(
    client, accounts, scored, sessions, config
):
    login(client, "lee")
    (config.data_dir.parent / "outside.png").write_bytes(png_bytes(99))
    with sessions() as s, s.begin():
        image = s.get(Image, scored[0])
        sha, image.path = image.sha256, "../outside.png"
    assert client.get(f"/images/{sha}").status_code == 404


def test_images_need_login(client, scored, sessions):
    with sessions() as s:
        sha = s.get(Image, scored[0]).sha256
    assert client.get(f"/images/{sha}").status_code == 302


def test_html_in_file_names_and_labels_is_escaped(client, accounts, sessions, config):
    evil = "<script>alert(1)</script>.png"
    with sessions() as s, s.begin():
        (item_id,) = add_scored_items(s, FileStore(config.data_dir), 1, names={0: evil})
        s.execute(update(Image).values(given_label="<img src=x onerror=alert(2)>"))
    login(client, "lee")
    for path in ("/queue", f"/items/{item_id}"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)" not in html and "<img src=x" not in html, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in client.get("/queue").get_data(
        as_text=True
    )
    assert "\\u003cscript\\u003e" in client.get(f"/items/{item_id}").get_data(as_text=True)


def test_form_post_without_csrf_token_is_refused(client, accounts):
    from tests.support.web import PASSWORDS

    response = client.post("/login", data={"username": "lee", "password": PASSWORDS["lee"]})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    login(client, "ada")
    refused = client.post("/admin/users", data={"username": "mallory", "role": "admin"})
    assert refused.status_code == 400
    assert "mallory" not in client.get("/admin/users").get_data(as_text=True)


def test_api_with_session_cookie_needs_the_csrf_header(client, accounts, scored):
    token = login(client, "lee")
    assert client.post("/api/queue/next", json={"strategy": "entropy"}).status_code == 400
    assert (
        client.post("/api/queue/next", json={}, headers={"X-CSRFToken": "forged"}).status_code
        == 400
    )
    ok = client.post("/api/queue/next", json={}, headers={"X-CSRFToken": token})
    assert ok.status_code == 200


def _token(sessions, username: str) -> str:
    with sessions() as s, s.begin():
        return users.create_token(s, users.require_user(s, username))[1]


def test_bearer_token_acts_as_its_user_only(app, accounts, scored, sessions):
    client = app.test_client()
    lee = {"Authorization": "Bearer " + _token(sessions, "lee")}
    leo = {"Authorization": "Bearer " + _token(sessions, "leo")}
    item = client.post("/api/queue/next", json={"strategy": "entropy"}, headers=lee)
    item_id = item.get_json()["item"]["id"]  # no CSRF header needed with a token
    assert (
        client.post(f"/api/items/{item_id}/labels", json={"label": "1"}, headers=leo).status_code
        == 409
    )
    done = client.post(f"/api/items/{item_id}/labels", json={"label": "1"}, headers=lee)
    assert done.get_json()["label"]["user_id"] == accounts["lee"]
    # leo cannot undo lee's label: the undo acts on the caller's own labels only.
    assert client.post(f"/api/items/{item_id}/labels/undo", headers=leo).status_code == 404
    # A token never reaches the admin pages, and a labeler's token cannot upload.
    assert client.get("/admin/users", headers=lee).status_code == 302
    upload = {"file": (io.BytesIO(png_bytes(5)), "x.png")}
    assert client.post("/api/images", data=upload, headers=lee).status_code == 403
    assert client.get("/api/queue", headers={"Authorization": "Bearer rvw_nope"}).status_code == 401


def test_labeler_gets_403_on_admin_pages(client, accounts):
    token = login(client, "lee")
    assert client.get("/admin/users").status_code == 403
    assert client.get("/admin/settings").status_code == 403
    response = client.post(
        f"/admin/users/{accounts['leo']}/active", data={"active": "0", "csrf_token": token}
    )
    assert response.status_code == 403


def test_disabling_a_user_ends_sessions_and_tokens(client, other_client, accounts, sessions):
    secret = _token(sessions, "lee")
    login(client, "lee")
    assert client.get("/queue").status_code == 200
    admin_token = login(other_client, "ada")
    response = other_client.post(
        f"/admin/users/{accounts['lee']}/active", data={"active": "0", "csrf_token": admin_token}
    )
    assert response.status_code == 302
    assert client.get("/queue").status_code == 302
    assert (
        client.get("/api/queue", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    )
    page = client.get("/login").get_data(as_text=True)
    again = client.post(
        "/login",
        data={"username": "lee", "password": "lee-password", "csrf_token": csrf_from(page)},
    )
    assert again.status_code == 401
