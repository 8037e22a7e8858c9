"""The labeler's pages: the queue, the review screen, and the image files.

This blueprint owns ``/queue`` (the ranked list for a strategy, filtered and
paginated by cursor, with overall and pending-version progress), ``/review``
(leases the next item of the labeler's current strategy, remembered in the
session) and ``/items/<id>`` (leases one chosen item), and ``/images/<sha256>``
which serves a stored file only for a 64-hex digest that is in the ``images``
table. The review screen renders its first item from embedded JSON; after that
its script talks to the JSON API. Queue logic lives in :mod:`reviewer.review`.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from flask import (
    Blueprint,
    abort,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from sqlalchemy import select

from reviewer.core import settings, strategies, versions
from reviewer.core.objects import ObjectStore
from reviewer.core.schema import Image
from reviewer.review import answers, errors, leasing, progress, ranking
from reviewer.review import labels as label_history
from reviewer.web import context, inputs

bp = Blueprint("review", __name__)
SHA256 = re.compile(r"[0-9a-f]{64}")
RESERVED_KEYS = ("n", "u", "s", "z", "+", "?")
DEFAULT_STRATEGY = "entropy"
PAGE_SIZE = 50
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".bmp": "image/bmp",
    ".gif": "image/gif",
    ".tif": "image/tiff",
    ".webp": "image/webp",
}
ONE_YEAR = 365 * 24 * 3600
METRIC_HINTS = {
    "entropy": "total uncertainty: high when the averaged prediction is spread over classes",
    "mutual_info": "epistemic part (BALD): the dropout samples disagree; more data would help",
    "variance": "how much the predicted class's probability swings between samples",
}
# Accept (Enter) is the default answer only when the model gives its class at least this
# mean probability; below it the labeler picks a class (docs/architecture.md).
ACCEPT_CONFIDENCE = 0.5
RECENT = 10  # recent labels the review screen can undo or jump back to


def class_keys(classes: list[str]) -> list[dict]:
    """The key of each class button: a one-character name is its own key (unless it is
    reserved or taken); the others get 1-9, 0 by position among the first ten."""
    taken = set(RESERVED_KEYS)
    keys: list[str | None] = [None] * len(classes)
    for i, name in enumerate(classes):
        if len(name) == 1 and name.lower() not in taken and name != " ":
            keys[i] = name
            taken.add(name.lower())
    for i in range(min(len(classes), 10)):
        positional = str((i + 1) % 10)
        if keys[i] is None and positional not in taken:
            keys[i] = positional
            taken.add(positional)
    return [{"name": name, "key": key} for name, key in zip(classes, keys, strict=True)]


def current_strategy() -> str:
    wanted = request.args.get("strategy") or session.get("strategy") or DEFAULT_STRATEGY
    if wanted not in strategies.STRATEGIES:
        abort(400, f"unknown strategy {wanted!r}: choose one of {', '.join(strategies.STRATEGIES)}")
    session["strategy"] = wanted
    return wanted


def current_filters() -> dict:
    """The queue's filters the review session takes over from the URL: predicted class and
    given label (None when not set)."""
    return inputs.class_filters(request.args)


@bp.route("/")
def index():
    return redirect(url_for("review.queue_page"))


@bp.route("/queue")
def queue_page():
    strategy = current_strategy()
    predicted, given = current_filters().values()
    s = context.read_session()
    version = versions.active_version(s)
    items, cursor, error = [], None, None
    try:
        items, cursor = ranking.ranked(
            s,
            strategy,
            limit=PAGE_SIZE,
            after=request.args.get("cursor") or None,
            predicted=predicted,
            given=given,
        )
    except errors.QueueError as exc:
        if exc.status != 404:
            abort(exc.status, str(exc))
        error = str(exc)
    for item in items:
        item["confidence"] = _mean_of(item, item.get("predicted_label"))
        item["rank_text"] = strategies.rank_text(strategy, item["rank_value"])
    return render_template(
        "queue.html",
        items=items,
        next_cursor=cursor,
        error=error,
        strategy=strategy,
        strategies=strategies.STRATEGIES,
        descriptions=strategies.DESCRIPTIONS,
        classes=list(version.classes) if version else settings.get_classes(s),
        predicted=predicted,
        given=given,
        progress=progress.progress(s),
    )


def _mean_of(item: dict, label: str | None) -> float | None:
    classes, mean = item.get("classes") or [], item.get("mean") or []
    if label in classes and len(mean) == len(classes):
        return mean[classes.index(label)]
    return None


def _review_page(item: dict | None, strategy: str, filters: dict, status: int = 200):
    if item is not None and item["classes"]:  # its version's classes: no second look-up
        classes = item["classes"]
    else:
        s = context.read_session()
        version = versions.active_version(s)
        classes = list(version.classes) if version else settings.get_classes(s)
    page = {
        "item": item,
        "strategy": strategy,
        "filters": filters,
        "answer_names": settings.SPECIAL_LABEL_NAMES,
        "keys": class_keys(classes),
        "hints": METRIC_HINTS,
        "accept_confidence": ACCEPT_CONFIDENCE,
        "recent": label_history.recent_labels(context.read_session(), g_user_id(), limit=RECENT),
        "lease_seconds": context.lease_seconds(),
    }
    return render_template(
        "review.html",
        page=page,
        keys=page["keys"],
        strategy=strategy,
        filters=page["filters"],
        strategies=strategies.STRATEGIES,
        descriptions=strategies.DESCRIPTIONS,
    ), status


@bp.route("/review")
def review_next():
    strategy, filters = current_strategy(), current_filters()
    try:
        with context.write() as s:
            item = leasing.next_item(
                s,
                g_user_id(),
                strategy,
                lease_seconds=context.lease_seconds(),
                **filters,
            )
    except errors.QueueError as exc:
        abort(exc.status, str(exc))
    return _review_page(item, strategy, filters)


@bp.route("/items/<int:image_id>")
def review_item(image_id: int):
    image_id = inputs.item_id(image_id)
    strategy, filters = current_strategy(), current_filters()  # checked before any write
    try:
        with context.write() as s:
            item = answers.open_item(
                s,
                image_id,
                g_user_id(),
                lease_seconds=context.lease_seconds(),
                by_hand=strategy if request.args.get("strategy") else None,  # a queue's link
            )
    except errors.QueueError as exc:
        abort(exc.status, str(exc))
    return _review_page(item, strategy, filters)


def g_user_id() -> int:
    return g.user.id


def _stored_file(store, image):
    """A local file's path (sent with sendfile and ranges), or a stored object opened for
    streaming; ValueError or FileNotFoundError when there is none."""
    if isinstance(store, ObjectStore):
        return store.open(image.path)
    path = store.absolute(image.path)
    if not path.is_file():
        raise FileNotFoundError(image.path)
    return path


@bp.route("/images/<sha256>")
def image_file(sha256: str):
    if not SHA256.fullmatch(sha256):
        abort(404)
    image = context.read_session().scalar(select(Image).where(Image.sha256 == sha256))
    if image is None or image.status != "ok":
        abort(404)
    suffix = PurePosixPath(image.path).suffix.lower()
    if suffix not in IMAGE_TYPES:
        abort(404)
    try:
        source = _stored_file(context.store(), image)
    except (ValueError, FileNotFoundError):
        abort(404)
    response = send_file(
        source, mimetype=IMAGE_TYPES[suffix], max_age=ONE_YEAR, conditional=True, etag=sha256
    )
    # Content-addressed: the bytes behind a digest never change.
    response.headers["Cache-Control"] = f"private, max-age={ONE_YEAR}, immutable"
    return response
