"""The web app with Flask's test client: login, pages, the JSON API's review flow."""

from __future__ import annotations

import json
import subprocess
import sys

from reviewer.core import strategies, versions
from reviewer.scoring import batchbald_batch as acquisition
from tests.support.pool import ITEM_KEYS
from tests.support.web import login


def test_create_app_does_not_import_tensorflow(config):
    code = (
        "import sys; from reviewer.core.config import Config; from reviewer import create_app; "
        f"app = create_app(Config(database_url={config.database_url!r}, secret_key='x')); "
        "app.test_client().get('/login'); "
        "import reviewer.dashboard.figures, reviewer.dashboard.charts, reviewer.web.dashboard; "
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(_repo_root()))


def _repo_root():
    from reviewer.core.db import CHECKOUT_MIGRATIONS

    return CHECKOUT_MIGRATIONS.parent


def test_pages_need_login(client):
    for path in ("/queue", "/review", "/dashboard", "/items/1", "/admin/users"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert client.get("/api/queue").status_code == 401
    assert client.get("/api/queue").get_json()["error"]
    assert client.get("/login").status_code == 200
    assert client.get("/api/openapi.json").status_code == 200


def test_login_logout_and_wrong_password(client, accounts):
    page = client.get("/login").get_data(as_text=True)
    from tests.support.web import csrf_from

    bad = client.post(
        "/login", data={"username": "lee", "password": "nope", "csrf_token": csrf_from(page)}
    )
    assert bad.status_code == 401 and "Wrong username or password" in bad.get_data(as_text=True)
    token = login(client, "lee")
    assert client.get("/queue").status_code == 200
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/queue").status_code == 302


def test_login_next_is_only_a_local_path(client, accounts):
    from tests.support.web import PASSWORDS, csrf_from

    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post(
        "/login?next=//evil.example/x",
        data={"username": "lee", "password": PASSWORDS["lee"], "csrf_token": token},
    )
    assert response.headers["Location"] == "/queue"


def test_queue_page_lists_items_with_reason_and_progress(client, accounts, scored):
    login(client, "lee")
    html = client.get("/queue?strategy=bald").get_data(as_text=True)
    assert "BALD" in html and "the model&#39;s samples disagree" in html
    assert "0</strong> reviewed" in html and "10</strong> scored" in html
    assert html.count('class="thumb"') == 10
    for strategy in strategies.STRATEGIES:
        assert client.get(f"/queue?strategy={strategy}").status_code == 200
    assert client.get("/queue?strategy=nonsense").status_code == 400
    assert client.get("/queue?predicted=3&given=3").status_code == 200


def test_queue_page_shows_the_batchbald_batch_by_place(client, accounts, scored, sessions):
    with sessions() as session:
        version = versions.active_version(session)
    with sessions() as session, session.begin():
        acquisition.write_batchbald_batch(session, version, [scored[4], scored[1]])
    login(client, "lee")
    html = client.get("/queue?strategy=batchbald").get_data(as_text=True)
    assert html.index(f"#{scored[4]}<") < html.index(f"#{scored[1]}<")
    assert ">batch #1<" in html and ">batch #2<" in html and "999999" not in html
    assert "place 1 of the BatchBALD batch" in html and "not in the BatchBALD batch" in html


def test_queue_api_paginates_with_a_cursor(client, accounts, scored):
    login(client, "lee")
    first = client.get("/api/queue?strategy=entropy&limit=4").get_json()
    assert len(first["items"]) == 4 and first["next_cursor"]
    entropies = [item["entropy"] for item in first["items"]]
    assert entropies == sorted(entropies, reverse=True)
    seen = [item["id"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(f"/api/queue?strategy=entropy&limit=4&cursor={cursor}").get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(scored)
    item = first["items"][0]
    assert {*ITEM_KEYS, "reason"} <= set(item)
    assert client.get("/api/queue?limit=0").status_code == 400
    assert client.get("/api/queue?strategy=x").status_code == 400


def test_review_flow_over_the_api(client, accounts, scored):
    token = login(client, "lee")
    headers = {"X-CSRFToken": token}
    item = client.post("/api/queue/next", json={"strategy": "margin"}, headers=headers)
    item = item.get_json()["item"]
    assert item["strategy"] == "margin" and item["lease_expires_at"]
    url = f"/api/items/{item['id']}/labels"
    answer = client.post(url, json={"label": "7", "seconds": 2.5}, headers=headers)
    assert answer.status_code == 201
    assert answer.get_json()["label"]["label"] == "7"
    assert answer.get_json()["label"]["seconds"] == 2.5
    assert client.post(url, json={"label": "cat"}, headers=headers).status_code == 400
    assert client.post(url, json={"label": "7", "seconds": "x"}, headers=headers).status_code == 400
    assert (
        client.post(
            url, data="[]", headers={**headers, "Content-Type": "application/json"}
        ).status_code
        == 400
    )
    progress = client.get("/api/progress").get_json()
    assert progress["reviewed"] == 1
    undo = client.post(f"/api/items/{item['id']}/labels/undo", headers=headers)
    assert undo.status_code == 200 and undo.get_json()["item"]["id"] == item["id"]
    assert client.get("/api/progress").get_json()["reviewed"] == 0
    nothing = client.post(f"/api/items/{item['id']}/labels/undo", headers=headers)
    assert nothing.status_code == 404
    skip = client.post(f"/api/items/{item['id']}/skip", headers=headers)
    assert skip.status_code == 200
    again = client.post("/api/queue/next", json={"strategy": "margin"}, headers=headers)
    assert again.get_json()["item"]["id"] != item["id"]
    detail = client.get(f"/api/items/{item['id']}").get_json()["item"]
    assert [row["label"] for row in detail["labels"]] == ["7", None]


def test_empty_queue_answers_item_null(client, accounts, scored):
    headers = {"X-CSRFToken": login(client, "lee")}
    for _ in scored:
        item = client.post("/api/queue/next", json={"strategy": "random"}, headers=headers)
        item_id = item.get_json()["item"]["id"]
        client.post(f"/api/items/{item_id}/labels", json={"label": "unsure"}, headers=headers)
    last = client.post("/api/queue/next", json={"strategy": "random"}, headers=headers)
    assert last.status_code == 200 and last.get_json() == {"item": None}


def test_leased_item_is_a_conflict_for_another_labeler(client, other_client, accounts, scored):
    lee = {"X-CSRFToken": login(client, "lee")}
    leo = {"X-CSRFToken": login(other_client, "leo")}
    item = client.post("/api/queue/next", json={"strategy": "entropy"}, headers=lee)
    item_id = item.get_json()["item"]["id"]
    other = other_client.post("/api/queue/next", json={"strategy": "entropy"}, headers=leo)
    assert other.get_json()["item"]["id"] != item_id
    taken = other_client.post(f"/api/items/{item_id}/labels", json={"label": "1"}, headers=leo)
    assert taken.status_code == 409 and "someone else" in taken.get_json()["error"]
    page = other_client.get(f"/items/{item_id}")
    assert page.status_code == 409


def test_review_page_embeds_the_item_and_keys(client, accounts, scored):
    login(client, "lee")
    html = client.get("/review?strategy=bald").get_data(as_text=True)
    data = html.split('<script type="application/json" id="page-data">')[1].split("</script>")[0]
    page = json.loads(data)
    assert page["strategy"] == "bald" and page["item"]["strategy"] == "bald"
    assert [k["key"] for k in page["keys"]] == [str(d) for d in range(10)]
    assert "<kbd>n</kbd>" in html and "<kbd>Enter</kbd>" in html and "<kbd>z</kbd>" in html
    # The strategy is remembered in the session.
    again = client.get("/review").get_data(as_text=True)
    assert '"strategy": "bald"' in again


def test_class_keys():
    from reviewer.web.review import class_keys

    assert [k["key"] for k in class_keys(["cat", "dog", "bird"])] == ["1", "2", "3"]
    keys = [k["key"] for k in class_keys(["a", "n", "horse", "1"])]
    assert keys == ["a", "2", "3", "1"]  # "n" is reserved; "1" is a name, so "horse" gets 3
    assert [k["key"] for k in class_keys([f"c{i}" for i in range(12)])][9:] == ["0", None, None]


def test_images_are_served_with_type_and_cache(client, accounts, scored):
    login(client, "lee")
    item = client.get("/api/queue?limit=1").get_json()["items"][0]
    response = client.get(f"/images/{item['sha256']}")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert "immutable" in response.headers["Cache-Control"]
    assert response.data.startswith(b"\x89PNG")


def test_openapi_covers_every_api_route(app):
    from reviewer.web.openapi import openapi_document

    paths = openapi_document()["paths"]
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/"):
            assert rule.rule.replace("<int:image_id>", "{id}") in paths, rule.rule


def test_change_password_ends_other_sessions(client, other_client, accounts):
    token = login(client, "lee")
    login(other_client, "lee")
    response = client.post(
        "/account/password",
        data={
            "csrf_token": token,
            "current_password": "lee-password",
            "new_password": "brand-new-pass",
            "confirm": "brand-new-pass",
        },
    )
    assert response.status_code == 302
    assert client.get("/queue").status_code == 200
    assert other_client.get("/queue").status_code == 302


def test_dashboard_and_stats(client, accounts, scored):
    headers = {"X-CSRFToken": login(client, "lee")}
    item = client.post("/api/queue/next", json={"strategy": "entropy"}, headers=headers)
    item_id = item.get_json()["item"]["id"]
    client.post(f"/api/items/{item_id}/labels", json={"label": "3", "seconds": 4}, headers=headers)
    stats = client.get("/api/stats").get_json()
    per_class = stats["labels_per_class"]
    assert stats["counts"]["labels"] == 1 and {k: n for k, n in per_class.items() if n} == {"3": 1}
    assert "none_of_these" in per_class and per_class["0"] == 0  # every answer has its row
    html = client.get("/dashboard").get_data(as_text=True)
    assert html.count("<svg") >= 6
    assert '<div class="value" id="count-labels">1</div>' in html


def test_generated_secret_key_is_persisted_next_to_the_sqlite_database(config):
    from reviewer import create_app

    if not config.is_sqlite:
        return  # PostgreSQL uses instance/secret_key in the working directory: not touched here
    first = create_app(config.with_(secret_key=""))
    key_file = config.data_dir.parent / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    second = create_app(config.with_(secret_key=""))
    assert first.secret_key == second.secret_key == key_file.read_text().strip()
    for app in (first, second):
        app.extensions["reviewer"]["engine"].dispose()


def test_serve_command_is_registered(run_cli):
    result = run_cli("serve", "--help")
    assert result.exit_code == 0 and "--host" in result.output and "--port" in result.output
