"""Admin pages: users, password resets, tokens, voiding labels, settings."""

from __future__ import annotations

import re

from reviewer.core import settings, users
from reviewer.review import labels, voids
from tests.support.web import login


def _secret(html: str) -> str:
    return re.search(r'<p class="secret" id="secret">([^<]+)</p>', html).group(1)


def test_create_user_with_a_generated_password(client, accounts, sessions):
    token = login(client, "ada")
    page = client.post(
        "/admin/users", data={"username": "new", "role": "labeler", "csrf_token": token}
    )
    password = _secret(page.get_data(as_text=True))
    with sessions() as s:
        assert users.authenticate(s, "new", password) is not None
    bad = client.post(
        "/admin/users",
        data={"username": "new", "role": "labeler", "csrf_token": token},
        follow_redirects=True,
    )
    assert "already exists" in bad.get_data(as_text=True)


def test_reset_password_and_tokens(client, accounts, sessions):
    token = login(client, "ada")
    page = client.post(f"/admin/users/{accounts['lee']}/password", data={"csrf_token": token})
    with sessions() as s:
        assert users.authenticate(s, "lee", _secret(page.get_data(as_text=True))) is not None
    page = client.post(f"/admin/users/{accounts['lee']}/tokens", data={"csrf_token": token})
    secret = _secret(page.get_data(as_text=True))
    bearer = {"Authorization": f"Bearer {secret}"}
    api = client.application.test_client()
    assert api.get("/api/progress", headers=bearer).status_code == 200
    listing = client.get("/admin/users").get_data(as_text=True)
    assert secret not in listing and "live" in listing
    with sessions() as s:
        token_id = users.list_tokens(s, accounts["lee"])[0].id
    client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": token})
    assert api.get("/api/progress", headers=bearer).status_code == 401


def test_void_labels_puts_items_back(client, other_client, accounts, scored):
    lee = {"X-CSRFToken": login(other_client, "lee")}
    for _ in range(2):
        item = other_client.post("/api/queue/next", json={}, headers=lee).get_json()["item"]
        other_client.post(f"/api/items/{item['id']}/labels", json={"label": "1"}, headers=lee)
    assert other_client.get("/api/progress").get_json()["reviewed"] == 2
    token = login(client, "ada")
    asked = client.post(f"/admin/users/{accounts['lee']}/void", data={"csrf_token": token})
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and "Void 2 label(s)" in page  # a confirmation, with the count
    assert other_client.get("/api/progress").get_json()["reviewed"] == 2  # nothing voided yet
    stale = client.post(  # confirmed for 1 label, but lee has 2: asked again, nothing voided
        f"/admin/users/{accounts['lee']}/void",
        data={"csrf_token": token, "confirm": "yes", "count": "1"},
    )
    assert "The count changed" in stale.get_data(as_text=True)
    assert "Void 2 label(s)" in stale.get_data(as_text=True)
    assert other_client.get("/api/progress").get_json()["reviewed"] == 2
    done = client.post(
        f"/admin/users/{accounts['lee']}/void",
        data={"csrf_token": token, "confirm": "yes", "count": "2"},
        follow_redirects=True,
    )
    assert "Voided 2 label(s) of lee" in done.get_data(as_text=True)
    assert other_client.get("/api/progress").get_json()["reviewed"] == 0


def test_voided_labels_are_listed_and_restored_with_who_did_what(
    client, other_client, accounts, scored, sessions
):
    lee = {"X-CSRFToken": login(other_client, "lee")}
    labeled = []
    for label in ("1", "2"):
        item = other_client.post("/api/queue/next", json={}, headers=lee).get_json()["item"]
        other_client.post(f"/api/items/{item['id']}/labels", json={"label": label}, headers=lee)
        labeled.append(item["id"])
    token = login(client, "ada")
    client.post(
        f"/admin/users/{accounts['lee']}/void",
        data={"csrf_token": token, "confirm": "yes", "count": "2"},
    )
    listing = client.get("/admin/voided").get_data(as_text=True)
    for image_id in labeled:
        assert f"#{image_id}" in listing
    with sessions() as s:
        voided = voids.voided_labels(s)
    assert [v["voided_by_user_id"] for v in voided] == [accounts["ada"]] * 2
    first = next(v for v in voided if v["image_id"] == labeled[0])
    # lee answers the second item again meanwhile: that answer stands, it is not restored over
    other_client.post(f"/api/items/{labeled[1]}/labels", json={"label": "7"}, headers=lee)
    done = client.post(
        f"/admin/labels/{first['id']}/restore", data={"csrf_token": token}, follow_redirects=True
    )
    assert f"Restored label {first['id']} on item {labeled[0]}" in done.get_data(as_text=True)
    again = client.post(
        f"/admin/labels/{first['id']}/restore", data={"csrf_token": token}, follow_redirects=True
    )
    assert "is restored already" in again.get_data(as_text=True)
    everyone = client.post(
        f"/admin/users/{accounts['lee']}/restore", data={"csrf_token": token}, follow_redirects=True
    )
    assert "labeled item" in everyone.get_data(as_text=True)  # the second one is refused
    with sessions() as s:
        current = {r["image_id"]: r for r in labels.recent_labels(s, accounts["lee"])}
        restored = voids.voided_labels(s)
    assert current[labeled[0]]["label"] == "1"
    assert current[labeled[0]]["restores_label_id"] == first["id"]
    assert current[labeled[0]]["restored_by_user_id"] == accounts["ada"]
    assert current[labeled[1]]["label"] == "7"
    assert {v["image_id"]: v["restored_label_id"] is not None for v in restored} == {
        labeled[0]: True,
        labeled[1]: False,
    }
    assert other_client.get("/api/progress").get_json()["reviewed"] == 2


def test_settings_page(client, accounts, sessions, scored):
    token = login(client, "ada")
    assert client.get("/admin/settings").status_code == 200
    page = client.get("/admin/settings").get_data(as_text=True)
    for name in settings.EDITABLE:
        assert f'name="{name}"' in page
    form = {"labels_per_item": "2", "risk_target": "0.02", "risk_confidence": "0.9"}
    client.post("/admin/settings", data={**form, "audit_rate": "0.1", "csrf_token": token})
    with sessions() as s:
        assert settings.get_labels_per_item(s) == 2
        assert settings.get_risk_target(s) == 0.02
        assert (settings.get_risk_confidence(s), settings.get_audit_rate(s)) == (0.9, 0.1)
    bad = client.post(
        "/admin/settings",
        data={**form, "labels_per_item": "3", "audit_rate": "1", "csrf_token": token},
        follow_redirects=True,
    )
    assert "the audit rate must be at least 0 and below 1" in bad.get_data(as_text=True)
    with sessions() as s:  # all or nothing: labels_per_item is unchanged too
        assert settings.get_labels_per_item(s) == 2 and settings.get_audit_rate(s) == 0.1
    bad = client.post(
        "/admin/settings",
        data={"labels_per_item": "0", "risk_target": "0.05", "csrf_token": token},
        follow_redirects=True,
    )
    assert "Not saved" in bad.get_data(as_text=True)


def test_admin_cannot_disable_themselves(client, accounts):
    token = login(client, "ada")
    page = client.post(
        f"/admin/users/{accounts['ada']}/active",
        data={"active": "0", "csrf_token": token},
        follow_redirects=True,
    )
    assert "cannot disable yourself" in page.get_data(as_text=True)
