"""People and their credentials: users, password hashes and API tokens.

This module owns who may use the review queue and how they prove it. Passwords
are hashed with ``werkzeug.security`` (never stored or logged in clear); an API
token is a random secret shown once at creation, of which only the sha256 is
stored, so a database leak reveals no usable token. Disabling a user keeps
their rows (their labels stay attributable) but makes every session and token
of theirs stop working at the next request. Functions take a session; the
caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from reviewer.core.schema import ApiToken, User, WebSession, as_utc, utcnow

ROLES = ("labeler", "admin")
MIN_PASSWORD_LENGTH = 8
TOKEN_PREFIX = "rvw_"
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
# A token's last_used_at is refreshed at most this often (one write, not one per request).
TOKEN_TOUCH_INTERVAL = timedelta(minutes=5)
# Compared against when the username is unknown, so both paths cost one hash check.
_DUMMY_HASH = generate_password_hash("not a real password")


class UserError(ValueError):
    """A request about users that cannot be done; ``str(exc)`` is shown to people."""


def check_password_strength(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    return generate_password_hash(check_password_strength(password))


def password_fingerprint(user: User) -> str:
    """A short digest of the password hash: a session remembers it, so a new password
    (changed or reset) ends every other session of that user."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def get_by_username(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def require_user(session: Session, username: str) -> User:
    user = get_by_username(session, username)
    if user is None:
        raise UserError(f"no user {username!r}")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def create_user(session: Session, username: str, password: str, *, role: str = "labeler") -> User:
    if not USERNAME_PATTERN.fullmatch(username or ""):
        raise UserError(
            "a username is 1-64 letters, digits or . _ @ - and starts with a letter or digit"
        )
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if get_by_username(session, username) is not None:
        raise UserError(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this username and password, else None."""
    user = get_by_username(session, username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password) or not user.is_active:
        return None
    return user


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)


def change_password(session: Session, user: User, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current):
        raise UserError("the current password is wrong")
    set_password(session, user, new)


def reset_password(session: Session, user: User) -> str:
    """Give the user a new random password and return it (shown once to the admin)."""
    password = secrets.token_urlsafe(12)
    set_password(session, user, password)
    return password


def set_active(session: Session, user: User, active: bool) -> None:
    """Enable or disable a user; disabling also revokes every token of theirs."""
    user.is_active = active
    if not active:
        for token in list_tokens(session, user.id):
            if token.revoked_at is None:
                token.revoked_at = utcnow()


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(session: Session, user: User) -> tuple[ApiToken, str]:
    """A new API token for ``user``: (row, secret). Only the secret's sha256 is stored."""
    if not user.is_active:
        raise UserError(f"user {user.username!r} is disabled")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, token_hash=_digest(secret))
    session.add(token)
    session.flush()
    return token, secret


def list_tokens(session: Session, user_id: int | None = None) -> list[ApiToken]:
    stmt = select(ApiToken).order_by(ApiToken.id)
    if user_id is not None:
        stmt = stmt.where(ApiToken.user_id == user_id)
    return list(session.scalars(stmt))


def revoke_token(session: Session, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise UserError(f"no token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = utcnow()


def user_for_token(session: Session, secret: str) -> tuple[User, ApiToken] | None:
    """The active user and live token row a bearer secret belongs to, else None."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    digest = _digest(secret)
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest))
    # The lookup is by digest; compare again in constant time for good measure.
    if token is None or not hmac.compare_digest(token.token_hash, digest):
        return None
    user = session.get(User, token.user_id)
    if token.revoked_at is not None or user is None or not user.is_active:
        return None
    return user, token


def token_needs_touch(token: ApiToken) -> bool:
    last = token.last_used_at
    if last is None:
        return True
    return utcnow() - as_utc(last) > TOKEN_TOUCH_INTERVAL


def touch_token(session: Session, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is not None:
        token.last_used_at = utcnow()


def open_session(session: Session, user: User, *, hours: int) -> str:
    """A new login of ``user`` for ``hours``: its secret id goes in the signed cookie, its
    sha256 in ``web_sessions``, so the server can end it (logout) before the cookie expires."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id_hash=_digest(secret),
            user_id=user.id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    session.flush()
    return secret


def session_is_live(session: Session, user_id: int, secret: str) -> bool:
    """Whether the login with this secret id is ``user_id``'s, not ended and not expired."""
    row = session.get(WebSession, _digest(secret))
    return (
        row is not None
        and row.user_id == user_id
        and row.revoked_at is None
        and as_utc(row.expires_at) > utcnow()
    )


def close_session(session: Session, secret: str) -> None:
    """End a login (logout); its cookie no longer authenticates anyone."""
    row = session.get(WebSession, _digest(secret))
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
