"""The JSON API under ``/api``: the queue, items, labels, stats and uploads.

This blueprint owns the HTTP shape of docs/architecture.md's shared interfaces: item
dicts with the same keys as ``reviewer queue --json``, a label body
``{"label": ..., "seconds": ...}``, undo at ``/labels/undo``. ``POST
/api/queue/next`` answers ``200 {"item": null}`` when nothing is left (never
204, so a client always gets JSON); ``POST /api/items/<id>/release`` gives a
lease back without an answer (the review page calls it before an undo).
Errors are ``{"error": message}`` with 400, 401, 403, 404, 409 (leased by
someone else) or 413. Authentication and CSRF are checked before any handler
runs (:mod:`reviewer.web.auth`); the work is done by the review room (:mod:`reviewer.review`),
:mod:`reviewer.dashboard.figures` and :mod:`reviewer.ingest.rows`.
"""

from __future__ import annotations

from flask import Blueprint, abort, g, jsonify, request

from reviewer.core import strategies
from reviewer.core.files import FileStore, is_no_space
from reviewer.ingest.rows import UploadRejected, add_upload, image_dict
from reviewer.review import answers, errors, leasing, ranking
from reviewer.review import labels as label_history
from reviewer.review import progress as queue_progress
from reviewer.web import context, inputs
from reviewer.web.openapi import openapi_document

bp = Blueprint("api", __name__, url_prefix="/api")
MAX_LIMIT = 200
MAX_SECONDS = 86_400  # the time spent on one item, as the label history accepts it


@bp.errorhandler(errors.QueueError)
def queue_error(exc: errors.QueueError):
    return jsonify(error=str(exc)), exc.status


@bp.url_value_preprocessor
def check_ids(_endpoint, values):
    """Every item id in an API URL is checked once, here (it must fit a database integer)."""
    if values and "image_id" in values:
        values["image_id"] = inputs.item_id(values["image_id"])


def _strategy(value) -> str:
    if value is None:
        return strategies.DEFAULT
    if not isinstance(value, str) or value not in strategies.STRATEGIES:
        abort(400, strategies.unknown(value if isinstance(value, str) else type(value).__name__))
    return value


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@bp.get("/queue")
def list_queue():
    limit = inputs.query_int("limit", 50, low=1, high=MAX_LIMIT)
    strategy = _strategy(request.args.get("strategy"))
    items, cursor = ranking.ranked(
        context.read_session(),
        strategy,
        limit=limit,
        after=request.args.get("cursor") or None,
        **inputs.class_filters(request.args),
    )
    return jsonify(strategy=strategy, items=items, next_cursor=cursor)


@bp.get("/progress")
def progress():
    return jsonify(queue_progress.progress(context.read_session()))


@bp.post("/queue/next")
def next_item():
    body = inputs.json_object()
    strategy = _strategy(body.get("strategy"))
    filters = inputs.class_filters(body)
    with context.write() as s:
        item = leasing.next_item(
            s, g.user.id, strategy, lease_seconds=context.lease_seconds(), **filters
        )
    return jsonify(item=item)


@bp.get("/labels/recent")
def recent_labels():
    limit = inputs.query_int("limit", 10, low=1, high=MAX_LIMIT)
    rows = label_history.recent_labels(context.read_session(), g.user.id, limit=limit)
    return jsonify(labels=rows)


@bp.get("/items/<int:image_id>")
def get_item(image_id: int):
    return jsonify(item=answers.get_item(context.read_session(), image_id, user_id=g.user.id))


@bp.post("/items/<int:image_id>/labels")
def add_label(image_id: int):
    body = inputs.json_object()
    label = body.get("label")
    if not isinstance(label, str) or not label:
        abort(400, 'a label body is {"label": "<class>" | "none_of_these" | "unsure"}')
    seconds = inputs.number(body.get("seconds"), "seconds", low=0, high=MAX_SECONDS)
    with context.write() as s:
        row, created = answers.submit_label(s, image_id, g.user.id, label, seconds=seconds)
    return jsonify(label=row, created=created), 201 if created else 200


@bp.post("/items/<int:image_id>/labels/undo")
def undo_label(image_id: int):
    with context.write() as s:
        row = answers.undo_label(s, image_id, g.user.id, lease_seconds=context.lease_seconds())
        item = answers.get_item(s, image_id, user_id=g.user.id)
    return jsonify(undo=row, item=item)


@bp.post("/items/<int:image_id>/skip")
def skip_item(image_id: int):
    with context.write() as s:
        answers.skip_item(s, image_id, g.user.id)
    return jsonify(skipped=image_id)


@bp.post("/items/<int:image_id>/release")
def release_item(image_id: int):
    with context.write() as s:
        answers.release(s, image_id, g.user.id)
    return jsonify(released=image_id)


@bp.get("/auto-accept")
def auto_accept():
    """The certified auto-accept threshold (``risk`` and ``confidence`` may override)."""
    from reviewer.review.audit import certificate

    options = {name: inputs.query_fraction(name) for name in ("risk", "confidence")}
    with context.snapshot() as s:
        return jsonify(certificate(s, **options).as_dict())


@bp.get("/stats")
def stats():
    from reviewer.dashboard.figures import dashboard_figures

    with context.snapshot() as s:
        return jsonify(dashboard_figures(s))


@bp.post("/images")
def upload_image():
    if not g.user.is_admin:
        abort(403, "uploading images is for admins")
    upload = request.files.get("file")
    if upload is None:
        abort(400, "send the image as multipart/form-data in a field named 'file'")
    config = context.config()
    data = upload.read(config.max_upload_bytes + 1)
    if len(data) > config.max_upload_bytes:
        abort(413)
    store = FileStore(context.store().root)  # this request's own staging, not shared
    try:
        with context.write() as s:
            image, created = add_upload(
                s,
                store,
                data,
                upload.filename,
                max_pixels=config.max_image_pixels,
                max_decoded_bytes=config.max_decoded_bytes,
                given_label=request.form.get("given_label") or None,
            )
            body = image_dict(image)
    except UploadRejected as exc:
        return jsonify(error=str(exc)), exc.status
    except BaseException as exc:
        store.roll_back()  # the row was not committed: its file goes too
        if is_no_space(exc):
            return jsonify(error="no space left on the image store: nothing was saved"), 507
        raise
    store.settle()
    return jsonify(image=body, created=created), 201 if created else 200
