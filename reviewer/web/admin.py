"""Admin pages under ``/admin``: users, passwords, tokens, voiding labels, settings.

This blueprint owns the forms an admin uses to run a deployment: create,
disable and re-enable users, reset a password (a random one, shown once),
issue and revoke API tokens (the secret is shown once, only its sha256 is
kept), void every label of a labeler after a confirmation, list voided labels and restore
them (:mod:`reviewer.review.voids`), and change the
project settings (labels per item, the risk target). Labelers get 403 (auth.py
checks the role for the whole blueprint). Secrets are rendered in the answer,
never put in the session cookie.
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)

from reviewer.core import settings, users
from reviewer.core.schema import User
from reviewer.review import answers, errors, voids
from reviewer.web import context, inputs, throttle

bp = Blueprint("admin", __name__, url_prefix="/admin")
VOIDED_SHOWN = 500  # the most recently voided labels listed on /admin/voided


def _user(session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        abort(404, f"no user {user_id}")
    return user


def _secret_page(what: str, secret: str):
    """A password or token, shown once: never kept by a browser's or a proxy's cache."""
    response = make_response(render_template("admin/secret.html", what=what, secret=secret))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def index():
    return redirect(url_for("admin.users_page"))


@bp.get("/users")
def users_page():
    s = context.read_session()
    tokens = users.list_tokens(s)
    names = {u.id: u.username for u in users.list_users(s)}
    return render_template(
        "admin/users.html",
        users=users.list_users(s),
        tokens=tokens,
        names=names,
        roles=users.ROLES,
    )


@bp.post("/users")
def create_user():
    username = request.form.get("username", "").strip()
    role = request.form.get("role", "labeler")
    password = request.form.get("password", "")
    generated = not password
    try:
        with context.write() as s:
            user = users.create_user(s, username, password or "x" * 16, role=role)
            if generated:
                password = users.reset_password(s, user)
    except users.UserError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users_page"))
    if generated:
        return _secret_page(f"Password of new user {username}", password)
    flash(f"Created {role} {username}.", "info")
    return redirect(url_for("admin.users_page"))


@bp.post("/users/<int:user_id>/active")
def set_active(user_id: int):
    active = request.form.get("active") == "1"
    if user_id == g.user.id and not active:
        flash("You cannot disable yourself.", "error")
        return redirect(url_for("admin.users_page"))
    with context.write() as s:
        user = _user(s, user_id)
        users.set_active(s, user, active)
        name = user.username
    flash(
        f"{name} is {'enabled' if active else 'disabled; their sessions and tokens end'}.", "info"
    )
    return redirect(url_for("admin.users_page"))


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id: int):
    with context.write() as s:
        user = _user(s, user_id)
        password = users.reset_password(s, user)
        name = user.username
    return _secret_page(f"New password of {name}", password)


@bp.post("/users/<int:user_id>/tokens")
def create_token(user_id: int):
    try:
        with context.write() as s:
            user = _user(s, user_id)
            _, secret = users.create_token(s, user)
            name = user.username
    except users.UserError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.users_page"))
    return _secret_page(f"API token of {name}", secret)


@bp.post("/tokens/<int:token_id>/revoke")
def revoke_token(token_id: int):
    try:
        with context.write() as s:
            users.revoke_token(s, token_id)
    except users.UserError as exc:
        abort(404, str(exc))
    flash(f"Token {token_id} revoked.", "info")
    return redirect(url_for("admin.users_page"))


@bp.post("/users/<int:user_id>/void")
def void_labels(user_id: int):
    """Void every current label of a user, after a confirmation page that gives the count."""
    confirmed = request.form.get("count") if request.form.get("confirm") == "yes" else None
    with context.write() as s:
        name, count = _user(s, user_id).username, voids.current_label_count(s, user_id)
        voiding = confirmed == str(count)  # else not confirmed yet, or the count changed since
        if voiding:
            count = answers.void_labels(s, user_id, admin_id=g.user.id)
    if not voiding:  # the page is rendered after the write transaction, not inside it
        user = {"id": user_id, "username": name}
        changed = confirmed is not None
        return render_template("admin/void_confirm.html", user=user, count=count, changed=changed)
    flash(
        f"Voided {count} label(s) of {name}; those items are back in the queue. "
        "Voided labels lists them and can restore them.",
        "info",
    )
    return redirect(url_for("admin.voided_page"))


@bp.get("/voided")
def voided_page():
    s = context.read_session()
    names = {u.id: u.username for u in users.list_users(s)}
    voided = voids.voided_labels(s, limit=VOIDED_SHOWN + 1)
    return render_template(
        "admin/voided.html",
        voided=voided[:VOIDED_SHOWN],
        more=len(voided) > VOIDED_SHOWN,
        shown=VOIDED_SHOWN,
        names=names,
        answer_names=settings.SPECIAL_LABEL_NAMES,
    )


@bp.post("/labels/<int:label_id>/restore")
def restore_label(label_id: int):
    label_id = inputs.item_id(label_id)
    try:
        with context.write() as s:
            row = voids.restore_label(s, label_id, admin_id=g.user.id)
    except errors.QueueError as exc:
        flash(f"Not restored: {exc}", "error")
    else:
        flash(f"Restored label {label_id} on item {row.image_id} (as label {row.id}).", "info")
    return redirect(url_for("admin.voided_page"))


@bp.post("/users/<int:user_id>/restore")
def restore_user_labels(user_id: int):
    with context.write() as s:
        name = _user(s, user_id).username
        count, refused = voids.restore_user_labels(s, user_id, admin_id=g.user.id)
    flash(f"Restored {count} voided label(s) of {name}.", "info")
    for reason in refused:
        flash(f"Not restored: {reason}", "error")
    return redirect(url_for("admin.voided_page"))


@bp.route("/settings", methods=["GET", "POST"])
def settings_page():
    if request.method == "POST":
        try:
            with context.write() as s:
                for name in settings.EDITABLE:  # all or nothing: one transaction
                    if name in request.form:
                        settings.set_by_name(s, name, request.form[name])
        except ValueError as exc:
            flash(f"Not saved: {exc}", "error")
        else:
            flash("Settings saved.", "info")
        return redirect(url_for("admin.settings_page"))
    s = context.read_session()
    values = {name: read(s) for name, (read, _) in settings.EDITABLE.items()}
    return render_template("admin/settings.html", **values, classes=settings.get_classes(s))


@bp.get("/throttles")
def throttles_page():
    return render_template(
        "admin/throttles.html",
        throttles=throttle.throttled(context.throttle()),
        account_limit=throttle.ACCOUNT_FAILURES,
        address_limit=throttle.ADDRESS_FAILURES,
        window_minutes=int(throttle.WINDOW.total_seconds() // 60),
    )


@bp.post("/throttles/clear")
def clear_throttle():
    key = request.form.get("key", "")
    throttle.clear(context.throttle(), key)
    flash(f"Lifted the throttle on {key}.", "info")
    return redirect(url_for("admin.throttles_page"))
