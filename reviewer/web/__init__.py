"""The Flask application: configuration, database wiring, security and blueprints.

This package owns the web process. ``build_app(config)`` makes one engine and
session factory per application, hands every request a read session (closed at
teardown, or before a write opens its own ``db.write_transaction``, so a request holds one
pooled connection at a time), runs each view again when the database was busy and answers
503 when it stays busy or cannot be reached (:mod:`reviewer.web.database`), sets the signed
session's secret key, the upload limit and CSRF protection for every form and
session-authenticated API call, and registers the blueprints: auth (login),
review (queue, review page, images), dashboard, api (JSON) and admin. Nothing
here imports TensorFlow.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.engine import make_url
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from reviewer.core import db
from reviewer.core.config import Config
from reviewer.core.objects import image_store
from reviewer.web import database, throttle

SECRET_KEY_FILE = "secret_key"
csrf = CSRFProtect()


def secret_key_path(config: Config) -> Path:
    """Where a generated secret key lives: next to a SQLite database file, else
    ``instance/secret_key`` (PostgreSQL deployments should set REVIEWER_SECRET_KEY)."""
    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).absolute().parent / SECRET_KEY_FILE
    return Path("instance").absolute() / SECRET_KEY_FILE


def load_or_create_secret_key(path: Path) -> str:
    """Read the key at ``path``, or create it (0600) so that every process of one deployment
    ends up with the same key. The key is written to a private file first and linked into
    place whole: a worker starting beside the creator reads the creator's key, never a file
    created but not yet written. Where the file system has no hard links, the key is
    written in place (created exclusively) instead."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        return _read_secret_key(path)
    key = secrets.token_hex(32)
    fd, written = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        _write_durably(fd, key)
        try:
            os.link(written, path)  # fails if another process linked its key first
        except FileExistsError:
            return _read_secret_key(path)
        except OSError:  # no hard links here (vfat, some network mounts)
            return _create_in_place(path, key)
    finally:
        os.unlink(written)
    return key


def _create_in_place(path: Path, key: str) -> str:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret_key(path)
    _write_durably(fd, key)
    return key


def _write_durably(fd: int, key: str) -> None:
    """Write the key and flush it to the disk: a crash never leaves an empty key file."""
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _read_secret_key(path: Path) -> str:
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty: delete it or set REVIEWER_SECRET_KEY")
    return key


def wants_json() -> bool:
    return request.path.startswith("/api/")


class ReviewerFlask(Flask):
    """Flask, with each view run again from the start when its transaction met a busy
    database (see :mod:`reviewer.web.database`)."""

    def dispatch_request(self):
        from reviewer.web import context

        return database.run_with_retries(super().dispatch_request, before_retry=context.end_read)


def _answer(code: int, message: str, **headers):
    if wants_json():
        response = jsonify(error=message)
    else:
        response = render_template("error.html", code=code, message=message)
    return response, code, headers


def _register_database_errors(app: Flask) -> None:
    @app.errorhandler(database.DatabaseBusy)
    def busy(exc):
        return _answer(503, str(exc), **{"Retry-After": "1"})

    @app.errorhandler(database.DatabaseUnavailable)
    def unavailable(exc):
        return _answer(503, str(exc), **{"Retry-After": "5"})

    @app.errorhandler(database.DatabaseFull)
    def full(exc):
        return _answer(507, str(exc))


def _register_errors(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        message = f"CSRF check failed: {exc.description}"
        if wants_json():
            return jsonify(error=message), 400
        return render_template("error.html", code=400, message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(exc):
        message = exc.description or exc.name
        if exc.code == 413:
            limit = app.config["MAX_CONTENT_LENGTH"]
            message = f"request too large: the limit is {limit} bytes (REVIEWER_MAX_UPLOAD_BYTES)"
        if wants_json():
            return jsonify(error=message), exc.code
        return render_template("error.html", code=exc.code, message=message), exc.code


def build_app(config: Config | None = None) -> Flask:
    config = Config.from_env() if config is None else config
    app = ReviewerFlask(__name__)
    app.config.update(
        SECRET_KEY=config.secret_key or load_or_create_secret_key(secret_key_path(config)),
        MAX_CONTENT_LENGTH=config.max_upload_bytes,
        TESTING=config.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.secure_cookies,
        # A login lasts REVIEWER_SESSION_HOURS from the moment it was made, not from the last
        # request: the server-side row expires then too (web_sessions).
        PERMANENT_SESSION_LIFETIME=timedelta(hours=config.session_hours),
        SESSION_REFRESH_EACH_REQUEST=False,
        # The API checks CSRF itself: only for cookie-authenticated calls (see auth.py).
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
    )
    app.extensions["reviewer"] = {
        "config": config,
        "engine": (engine := _engine(config)),
        "sessions": db.session_factory(engine),
        "store": image_store(config.data_dir),
        "throttle": throttle.open_store(config.database_url),
    }
    if config.proxy_hops:  # the client address from X-Forwarded-For of trusted proxies only
        hops = config.proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    csrf.init_app(app)

    @app.teardown_appcontext
    def close_session(_exc):
        session = g.pop("db", None)
        if session is not None:
            session.close()

    @app.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; "
            "form-action 'self'",
        )
        return response

    from reviewer.web import admin, api, auth, dashboard, review

    for module in (auth, review, dashboard, api, admin):
        app.register_blueprint(module.bp)
    auth.init_app(app)
    _register_errors(app)
    _register_database_errors(app)
    return app


def _engine(config: Config):
    """The web process's engine: a pool with one connection per serving thread, bounded
    lock waits (:mod:`reviewer.web.database`), WAL checkpoints off the request path."""
    return db.make_engine(
        config.database_url,
        background_checkpoints=True,
        busy_timeout_ms=int(database.SQLITE_BUSY_SECONDS * 1000),
        lock_timeout_ms=database.POSTGRES_LOCK_TIMEOUT_MS,
        **database.engine_options(config.web_threads),
    )
