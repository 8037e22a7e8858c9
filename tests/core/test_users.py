"""Users, password hashes and API tokens (reviewer.core.users) and their CLI commands."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from reviewer.core import users
from reviewer.core.schema import ApiToken, User


def test_passwords_are_hashed_and_checked(sessions):
    with sessions() as s, s.begin():
        user = users.create_user(s, "ada", "correct horse", role="admin")
        assert "correct horse" not in user.password_hash
    with sessions() as s:
        assert users.authenticate(s, "ada", "correct horse").username == "ada"
        assert users.authenticate(s, "ada", "wrong horse") is None
        assert users.authenticate(s, "nobody", "correct horse") is None


def test_create_user_validates(sessions):
    with sessions() as s, s.begin():
        users.create_user(s, "lee", "long enough")
        with pytest.raises(users.UserError, match="already exists"):
            users.create_user(s, "lee", "long enough")
        with pytest.raises(users.UserError, match="at least 8"):
            users.create_user(s, "leo", "short")
        with pytest.raises(users.UserError, match="role"):
            users.create_user(s, "leo", "long enough", role="root")
        with pytest.raises(users.UserError, match="username"):
            users.create_user(s, "<b>x</b>", "long enough")


def test_token_secret_is_shown_once_and_only_its_hash_is_stored(sessions):
    with sessions() as s, s.begin():
        user = users.create_user(s, "lee", "long enough")
        token, secret = users.create_token(s, user)
    with sessions() as s:
        row = s.get(ApiToken, token.id)
        assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in {row.token_hash}
        found_user, found_token = users.user_for_token(s, secret)
        assert (found_user.username, found_token.id) == ("lee", token.id)
        assert users.user_for_token(s, secret + "x") is None
        assert users.user_for_token(s, "not-a-token") is None


def test_revoked_token_and_disabled_user_stop_working(sessions):
    with sessions() as s, s.begin():
        user = users.create_user(s, "lee", "long enough")
        first, first_secret = users.create_token(s, user)
        _, second_secret = users.create_token(s, user)
        users.revoke_token(s, first.id)
    with sessions() as s, s.begin():
        assert users.user_for_token(s, first_secret) is None
        assert users.user_for_token(s, second_secret) is not None
        users.set_active(s, s.scalar(select(User).where(User.username == "lee")), False)
    with sessions() as s, s.begin():
        assert users.user_for_token(s, second_secret) is None
        assert users.authenticate(s, "lee", "long enough") is None
        lee = users.require_user(s, "lee")
        users.set_active(s, lee, True)
    with sessions() as s:
        # Re-enabling does not bring back tokens revoked by the disable.
        assert users.user_for_token(s, second_secret) is None
        assert users.authenticate(s, "lee", "long enough") is not None


def test_reset_and_change_password_change_the_fingerprint(sessions):
    with sessions() as s, s.begin():
        user = users.create_user(s, "lee", "long enough")
        before = users.password_fingerprint(user)
        new = users.reset_password(s, user)
        assert users.password_fingerprint(user) != before
        with pytest.raises(users.UserError, match="current password"):
            users.change_password(s, user, "long enough", "another one")
        users.change_password(s, user, new, "another one")
    with sessions() as s:
        assert users.authenticate(s, "lee", "another one") is not None


def test_cli_create_user_from_stdin_and_token(run_cli, sessions):
    result = run_cli(
        "create-user", "ada", "--role", "admin", "--password-stdin", input="s3cret-password\n"
    )
    assert result.exit_code == 0, result.output
    result = run_cli("token", "ada")
    assert result.exit_code == 0, result.output
    secret = result.output.split()[-1]
    with sessions() as s:
        user, _ = users.user_for_token(s, secret)
        assert (user.username, user.role) == ("ada", "admin")
        assert users.authenticate(s, "ada", "s3cret-password") is not None


def test_cli_create_user_prompts_with_confirmation(run_cli, sessions):
    result = run_cli("create-user", "lee", input="long enough\nlong enough\n")
    assert result.exit_code == 0, result.output
    result = run_cli("create-user", "leo", input="long enough\nsomething else\n")
    assert result.exit_code != 0
    with sessions() as s:
        assert users.get_by_username(s, "lee").role == "labeler"
        assert users.get_by_username(s, "leo") is None


def test_cli_errors_are_messages(run_cli):
    assert "no user 'ghost'" in run_cli("token", "ghost").output
    result = run_cli("create-user", "lee", "--password-stdin", input="short\n")
    assert result.exit_code == 1 and "at least 8" in result.output
