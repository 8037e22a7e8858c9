"""Who is asking: log in and out, change one's password, and the per-request check.

This blueprint owns authentication for every request. A browser logs in with a
username and password (failed logins are throttled, :mod:`reviewer.web.throttle`); the
signed cookie keeps the user id, the id of a server-side login row (``web_sessions``: logout
ends it, and it expires after ``REVIEWER_SESSION_HOURS``) and a fingerprint of the password
hash, and on every request the user is loaded again, so a disabled user, a password changed
or reset elsewhere, or a logout ends the session at once. Scripts send ``Authorization:
Bearer <token>`` to ``/api/...`` instead; those calls are exempt from CSRF, every other POST
(forms, logout, and the page's own ``fetch`` calls with ``X-CSRFToken``) must carry the
token. Anything but the login page and static files needs a user; ``/admin/...`` an admin.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from reviewer.core import users
from reviewer.core.schema import User
from reviewer.web import context, csrf, database, throttle

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)
PUBLIC_ENDPOINTS = {"auth.login", "static", "api.openapi"}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    role: str
    via: str  # "session" or "token"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _current(user: User, via: str) -> CurrentUser:
    return CurrentUser(user.id, user.username, user.role, via)


def _from_token(header: str) -> CurrentUser | None:
    found = users.user_for_token(context.read_session(), header.removeprefix("Bearer ").strip())
    if found is None:
        return None
    user, token = found
    current, token_id, stale = _current(user, "token"), token.id, users.token_needs_touch(token)
    if stale:  # plain values first: the write below closes the read session
        _touch(token_id)
    return current


def _touch(token_id: int) -> None:
    """Record that a token was used. Best effort: a busy database skips it (the next request
    touches it), it never delays or fails the request it rides on."""
    try:
        with context.write() as s:
            users.touch_token(s, token_id)
    except (DBAPIError, PoolTimeout) as exc:
        if not database.is_busy(exc):
            raise
        log.info("token %d not touched: the database is busy", token_id)


def _from_session() -> CurrentUser | None:
    user_id, secret = session.get("user_id"), session.get("sid")
    if user_id is None:
        return None  # not logged in (the session may still hold the login form's CSRF token)
    if not isinstance(user_id, int) or not isinstance(secret, str):
        session.clear()
        return None
    s = context.read_session()
    user = s.get(User, user_id)
    fingerprint = user is not None and session.get("pw") == users.password_fingerprint(user)
    if not (fingerprint and user.is_active and users.session_is_live(s, user_id, secret)):
        session.clear()
        return None
    return _current(user, "session")


def load_user() -> None:
    """Before every request: authenticate, check CSRF, enforce login and roles."""
    if request.endpoint == "static":
        return None
    header = request.headers.get("Authorization", "")
    is_api = request.path.startswith("/api/")
    if is_api and header.startswith("Bearer "):
        g.user = _from_token(header)
        if g.user is None:
            return jsonify(error="invalid, revoked or disabled API token"), 401
    else:
        g.user = _from_session()
        if request.method in UNSAFE_METHODS:
            csrf.protect()
    context.end_read()
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if g.user is None:
        if is_api:
            return jsonify(error="log in or send an API token (Authorization: Bearer ...)"), 401
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if request.blueprint == "admin" and not g.user.is_admin:
        abort(403, "this page is for admins only")
    return None


def init_app(app) -> None:
    # Authentication reads the database too: a busy or unreachable one is retried, then 503.
    app.before_request(lambda: database.run_with_retries(load_user, before_retry=context.end_read))

    @app.context_processor
    def inject_user():
        return {"current_user": g.get("user")}


def safe_next(target: str | None) -> str:
    """``target`` as a path of this site (parsed and rebuilt: path and query only), else the
    queue page. Control characters, backslashes, schemes, hosts and ``//host`` are refused:
    browsers and Werkzeug would read those as another origin."""
    default = url_for("review.queue_page")
    if not target or "\\" in target or any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return default
    parts = urlsplit(target)
    path = parts.path
    if parts.scheme or parts.netloc or not path.startswith("/") or path.startswith("//"):
        return default
    return urlunsplit(("", "", path, parts.query, ""))


def _log_in(user: User) -> None:
    config = context.config()
    with context.write() as s:
        secret = users.open_session(s, s.get(User, user.id), hours=config.session_hours)
    session.clear()
    session.permanent = True  # the cookie lasts REVIEWER_SESSION_HOURS, not the browser's life
    session.update(user_id=user.id, sid=secret, pw=users.password_fingerprint(user))


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        return _attempt_login()
    if g.get("user") is not None:
        return redirect(safe_next(request.args.get("next")))
    return render_template("login.html", username="")


def _attempt_login():
    username = request.form.get("username", "")
    address = request.remote_addr or "unknown"
    store = context.throttle()
    refusal = throttle.check(store, username, address)
    if refusal is not None:
        minutes = -(-refusal.retry_after // 60)
        flash(f"{refusal.reason.capitalize()}: try again in {minutes} min.", "error")
        page = render_template("login.html", username=username)
        return page, 429, {"Retry-After": str(refusal.retry_after)}
    user = users.authenticate(context.read_session(), username, request.form.get("password", ""))
    if user is None:
        throttle.record_failure(store, username, address)
        flash("Wrong username or password, or the account is disabled.", "error")
        return render_template("login.html", username=username), 401
    _log_in(user)
    return redirect(safe_next(request.args.get("next")))


@bp.post("/logout")
def logout():
    """Log out (POST with the CSRF token): the login row ends, so a copy of the cookie is
    worthless from now on."""
    secret = session.get("sid")
    if isinstance(secret, str):
        with context.write() as s:
            users.close_session(s, secret)
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    if request.method == "POST":
        new, again = request.form.get("new_password", ""), request.form.get("confirm", "")
        try:
            if new != again:
                raise users.UserError("the two new passwords differ")
            with context.write() as s:
                user = s.get(User, g.user.id)
                users.change_password(s, user, request.form.get("current_password", ""), new)
                fingerprint = users.password_fingerprint(user)
        except users.UserError as exc:
            flash(str(exc), "error")
            return render_template("password.html"), 400
        session["pw"] = fingerprint  # this session stays; the others end
        flash("Password changed.", "info")
        return redirect(url_for("review.queue_page"))
    return render_template("password.html")
