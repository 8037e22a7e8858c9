"""Accounts under attack: redirects after login, sessions after logout, logout by GET,
brute-forced passwords, client addresses behind a proxy, secrets kept out of caches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import request
from sqlalchemy import func, select, update

from reviewer import create_app
from reviewer.core.schema import LoginFailure, WebSession, utcnow
from reviewer.web import throttle
from tests.support.web import PASSWORDS, csrf_from, login


def _post_login(client, username, password, *, next_=None, address="10.0.0.1"):
    token = csrf_from(client.get("/login").get_data(as_text=True))
    url = "/login" + (f"?next={next_}" if next_ is not None else "")
    form = {"username": username, "password": password, "csrf_token": token}
    return client.post(url, data=form, environ_base={"REMOTE_ADDR": address})


@pytest.mark.parametrize(
    "target",
    [
        "/%09/127.0.0.1:5999/x",  # a tab Werkzeug strips from Location: //127.0.0.1:5999/x
        "/%0A/x",  # a newline: was a 500
        "/%0D%0ASet-Cookie:x=1",
        "//evil.example/x",
        "/\\evil.example",
        "%2F%2Fevil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "/%5C%5Cevil.example",
        "/%00/x",
        " //evil.example",
    ],
)
def test_login_redirects_only_to_a_path_of_this_site(client, accounts, target):
    response = _post_login(client, "lee", PASSWORDS["lee"], next_=target)
    assert response.status_code == 302 and response.headers["Location"] == "/queue"
    again = client.get(f"/login?next={target}")  # logged in already: the same rule
    assert again.status_code == 302 and again.headers["Location"] == "/queue"


def test_a_local_next_survives_with_its_query(client, accounts):
    response = _post_login(client, "lee", PASSWORDS["lee"], next_="/review%3Fstrategy%3Dbald")
    assert response.headers["Location"] == "/review?strategy=bald"


def test_logout_is_post_only_with_the_csrf_token(client, accounts):
    token = login(client, "lee")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400  # no CSRF token
    assert client.get("/queue").status_code == 200  # still logged in
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/queue").status_code == 302


def test_a_copied_cookie_is_worthless_after_logout(app, client, accounts):
    token = login(client, "lee")
    copy = app.test_client()
    cookie = client.get_cookie("session")
    copy.set_cookie("session", cookie.value)
    assert copy.get("/queue").status_code == 200  # the copy works while the login lasts
    client.post("/logout", data={"csrf_token": token})
    assert copy.get("/queue").status_code == 302  # ended on the server, not just forgotten


def test_a_session_ends_after_its_lifetime(client, accounts, sessions):
    login(client, "lee")
    with sessions() as s, s.begin():
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/queue").status_code == 302


def test_session_cookie_flags(config, accounts):
    app = create_app(config.with_(secure_cookies=True, session_hours=3))
    client = app.test_client()
    response = _post_login(client, "lee", PASSWORDS["lee"])
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Expires=" in cookie  # a lifetime of its own, not the browser session's
    assert app.permanent_session_lifetime == timedelta(hours=3)
    app.extensions["reviewer"]["engine"].dispose()


def _failures(config) -> int:
    engine = throttle.open_store(config.database_url)
    with engine.connect() as connection:
        count = connection.scalar(select(func.count()).select_from(LoginFailure))
    engine.dispose()
    return count


def test_brute_force_is_throttled_per_account_and_address(client, accounts, config):
    for _ in range(throttle.ACCOUNT_FAILURES):
        assert _post_login(client, "lee", "wrong-password").status_code == 401
    refused = _post_login(client, "lee", PASSWORDS["lee"])  # even the right password now
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "too many failed logins" in refused.get_data(as_text=True).lower()
    # The labeler's own address is not locked out by an attacker elsewhere.
    assert _post_login(client, "lee", PASSWORDS["lee"], address="10.0.0.2").status_code == 302


def test_one_address_trying_many_accounts_is_throttled(client, accounts):
    names = [f"user{i}" for i in range(throttle.ADDRESS_FAILURES)]
    for name in names:
        assert _post_login(client, name, "guess", address="10.9.9.9").status_code == 401
    assert _post_login(client, "leo", PASSWORDS["leo"], address="10.9.9.9").status_code == 429
    assert _post_login(client, "leo", PASSWORDS["leo"], address="10.9.9.8").status_code == 302


def test_a_successful_login_writes_no_failure(client, accounts, config):
    assert _post_login(client, "lee", PASSWORDS["lee"]).status_code == 302
    assert _failures(config) == 0


def test_admins_see_and_lift_throttles(client, other_client, accounts):
    for _ in range(throttle.ACCOUNT_FAILURES):
        _post_login(other_client, "leo", "wrong")
    token = login(client, "ada")
    page = client.get("/admin/throttles").get_data(as_text=True)
    key = "account:leo|10.0.0.1"
    assert key in page
    lifted = client.post("/admin/throttles/clear", data={"key": key, "csrf_token": token})
    assert lifted.status_code == 302
    assert _post_login(other_client, "leo", PASSWORDS["leo"]).status_code == 302


def test_forwarded_addresses_count_only_behind_trusted_proxies(config, accounts):
    spoofed = {"X-Forwarded-For": "203.0.113.7"}
    for hops, expected in ((0, "127.0.0.1"), (1, "203.0.113.7")):
        app = create_app(config.with_(proxy_hops=hops))
        seen = []
        app.before_request(lambda seen=seen: seen.append(request.remote_addr))
        app.test_client().get("/login", headers=spoofed)
        assert seen == [expected]
        app.extensions["reviewer"]["engine"].dispose()


def test_pages_that_show_a_secret_are_not_cached(client, accounts):
    token = login(client, "ada")
    shown = client.post(f"/admin/users/{accounts['lee']}/tokens", data={"csrf_token": token})
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    reset = client.post(f"/admin/users/{accounts['lee']}/password", data={"csrf_token": token})
    assert reset.headers["Cache-Control"] == "no-store"
