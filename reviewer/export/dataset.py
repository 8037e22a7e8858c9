"""Reviewed labels -> a data set directory for retraining, with manifests and a report.

This module owns `export_dataset`: it takes each labeled item's current labels (undone and
voided rows never count), settles several labelers by majority (`labels.consensus`; ties and
"unsure" are left out by default) and writes ``images/<class>/<sha256>.png`` (the layout
``keras.utils.image_dataset_from_directory`` reads, one folder per project class even when
empty), ``none_of_these/``, optionally ``unsure/``, ``manifest.csv``, ``manifest.jsonl`` and
``report.txt``. Everything is written and fsynced in a temporary sibling directory that is then
renamed to OUT, so a crash never leaves a half export under OUT's name. The caller owns the
session: the `Export` row (with the label watermark ``--since last`` starts after) is added to
it and the caller commits.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reviewer.core import locations, settings
from reviewer.core.files import FileStore
from reviewer.core.schema import Export, Image, Label, ModelVersion, Score, User, as_utc
from reviewer.core.versions import active_version
from reviewer.export import remote as remote_export
from reviewer.export.files import (
    ExportError,
    check_out,
    fsync,
    png_bytes,
    recover,
    swap_in,
    work_folder,
    write_file,
)
from reviewer.export.manifest import (
    AUDIT,
    HUMAN,
    MODEL,
    model_record,
    record,
    report_text,
    write_manifests,
)
from reviewer.review import audit, labels

SINCE_CHOICES = ("all", "last")
AUDIT_FOLDER, AUTO_FOLDER = "audit", "auto"


@dataclass
class ExportResult:
    path: Path | str  # a folder, or an object-storage URL
    watermark: int
    counts: dict[str, int] = field(default_factory=dict)  # class / none_of_these / unsure -> n
    left_out: list[tuple[int, str, str]] = field(default_factory=list)  # (id, sha256, reason)
    export_id: int | None = None
    recovered: list[str] = field(default_factory=list)  # what was cleaned up after killed runs
    replace: bool = False  # OUT holds an earlier export that the new one replaces
    work: Path | None = None  # the prepared, unfinished export
    uploaded: list[str] = field(default_factory=list)  # its data keys on object storage
    records: list[dict] = field(default_factory=list)  # the manifest's rows
    sources: dict[str, int] = field(default_factory=dict)  # human / audit / model -> n
    auto: object | None = None  # the certificate of --auto-accept (review.audit.AutoAccept)
    auto_lines: list[str] = field(default_factory=list)  # it, in words, for report.txt

    @property
    def item_count(self) -> int:
        return sum(self.counts.values())


def _items(session: Session, after: int, watermark: int):
    """Yield (image, current label rows with usernames, cancel reasons, versions, scores)
    per item with a label row in (after, watermark]."""
    scope = select(Label.image_id).where(Label.id > after, Label.id <= watermark)
    versions = {v.id: v for v in session.scalars(select(ModelVersion))}
    scores = {
        (s.image_id, s.model_version_id): s
        for s in session.scalars(select(Score).where(Score.image_id.in_(scope)))
    }
    in_scope = (Label.image_id.in_(scope), Label.id <= watermark)
    current = labels.current_labels_query().add_columns(User.username)
    current = current.join(User, User.id == Label.user_id).where(*in_scope).order_by(Label.id)
    rows: dict[int, list] = defaultdict(list)
    for label, username in session.execute(current):
        rows[label.image_id].append((label, username))
    cancels: dict[int, set] = defaultdict(set)
    cancel_rows = select(Label.image_id, Label.reason).where(Label.label.is_(None), *in_scope)
    for image_id, reason in session.execute(cancel_rows):
        cancels[image_id].add(reason)
    for image in session.scalars(select(Image).where(Image.id.in_(scope)).order_by(Image.id)):
        yield image, rows.get(image.id, []), cancels.get(image.id, set()), versions, scores


def _decide(given: list, cancels: set, classes: list[str], include_unsure: bool, audited: bool):
    """Return (folder relative to OUT, winner) or (None, reason it is left out). The audit
    set's items go under audit/: held out of training unless asked for."""
    folder, winner = _decide_label(given, cancels, classes, include_unsure)
    return (
        f"{AUDIT_FOLDER}/{folder.removeprefix('images/')}" if folder and audited else folder
    ), winner


def _decide_label(given: list, cancels: set, classes: list[str], include_unsure: bool):
    if not given:
        return None, "voided by an admin" if labels.VOID in cancels else "undone by the labeler"
    winner = labels.consensus([label.label for label, _ in given])
    if winner is None:
        votes = ", ".join(f"{name}: {label.label}" for label, name in given)
        return None, f"tie ({votes})"
    if winner == settings.UNSURE and not include_unsure:
        return None, "unsure (pass --include-unsure to export it)"
    if winner in settings.SPECIAL_LABELS:
        return winner, winner
    if winner not in classes:
        return None, f"label {winner!r} is no longer in the class list"
    return f"images/{winner}", winner


def _check_out(out, force: bool) -> tuple:
    """(OUT, what was recovered after killed exports, whether an earlier export is replaced);
    on object storage the export is prepared locally and uploaded (reviewer.export.remote)."""
    if locations.is_remote(out):
        return out, [], remote_export.check_out(out, force)
    out = Path(out).absolute()
    return out, recover(out), check_out(out, force)


def prepare_export(
    session: Session,
    store: FileStore,
    out: Path,
    *,
    since: str = "all",
    include_unsure: bool = False,
    force: bool = False,
    auto_accept: dict | None = None,
) -> ExportResult:
    """Read the human-reviewed items and write them into a temporary folder beside `out`
    (``result.work``); nothing is final until `finish_export`. ``session`` only reads: on
    SQLite, labelers keep writing meanwhile.

    `since` is "all" or "last" (only items with label rows after the previous export's
    watermark). The audit set's items go to ``audit/``. ``auto_accept`` ({"risk", "confidence"},
    None values: the settings) also writes the certified auto-accepted items to ``auto/``,
    and refuses (ExportError, nothing written) without a certificate. Raises `ExportError`
    when `out` is in the way (non-empty without `force`).
    """
    if since not in SINCE_CHOICES:
        raise ValueError(f"since must be one of {SINCE_CHOICES}, got {since!r}")
    out, recovered, replace = _check_out(out, force)
    remote = locations.is_remote(out)
    auto = _certificate(session, auto_accept) if auto_accept is not None else None
    classes = settings.get_classes(session)
    if any(name in (".", "..") for name in classes):
        raise ExportError("class names '.' and '..' cannot be folder names")
    previous = session.scalar(select(Export).order_by(Export.id.desc()).limit(1))
    after = previous.label_watermark if since == "last" and previous else 0
    # Read the watermark first and bound every query by it: on READ COMMITTED each
    # statement sees new commits, and a label that arrives meanwhile belongs to the next export.
    watermark = session.scalar(select(func.max(Label.id))) or after
    if since == "last" and previous is not None and watermark <= after and auto is None:
        when = as_utc(previous.created_at).strftime("%Y-%m-%d %H:%M UTC")
        raise ExportError(
            f"nothing new since the last export at {when} ({previous.path}): no label was "
            "given, undone or voided after it; nothing written"
        )
    result = ExportResult(path=out, watermark=watermark, recovered=recovered, replace=replace)
    result.auto, result.auto_lines = auto, audit.describe(auto) if auto is not None else []
    folders = _folders(classes, include_unsure, auto is not None)
    if not remote:
        out.parent.mkdir(parents=True, exist_ok=True)
    result.work = work = remote_export.work_folder() if remote else work_folder(out)
    try:
        _write_items(session, store, work, result, folders, classes, include_unsure, after)
        if auto is not None:
            _write_auto(session, store, work, result)
        write_manifests(work, result.records)
        write_file(work / "report.txt", report_text(result, classes, since, after).encode())
        for folder in [*reversed(folders), "."]:  # entries before the folders holding them
            fsync(work / folder)
        os.chmod(work, 0o755)  # mkdtemp's 0700 would hide the data set from other users
        if remote:
            result.uploaded = remote_export.upload_data(work, out, replace)
    except BaseException:
        discard_export(result)
        raise
    return result


def _folders(classes: list[str], include_unsure: bool, auto: bool) -> list[str]:
    """Every folder of the export, parents first."""
    answers = [settings.NONE_OF_THESE] + ([settings.UNSURE] if include_unsure else [])
    folders = ["images", *(f"images/{name}" for name in classes), *answers]
    folders += [AUDIT_FOLDER, *(f"{AUDIT_FOLDER}/{name}" for name in [*classes, *answers])]
    if auto:
        folders += [AUTO_FOLDER, *(f"{AUTO_FOLDER}/{name}" for name in classes)]
    return folders


def _certificate(session: Session, options: dict):
    """The certificate --auto-accept needs; ExportError (nothing written) without one."""
    result = audit.certificate(session, **options)
    if result.threshold is None:
        raise ExportError(f"no certified auto-accept threshold, nothing exported: {result.reason}")
    return result


def _write_auto(session, store, work, result) -> None:
    """A(τ): the images nobody answered at or above the certified threshold, with the model's
    label, under auto/<class>/ (manifest source "model")."""
    version = active_version(session)
    records = []
    for image, score in audit.accepted_images(session, version, result.auto.threshold):
        record = model_record(image, score, version, result.auto.threshold)
        write_file(work / record["file"], png_bytes(store.read_bytes(image.path)))
        records.append(record)
        result.counts[score.predicted_label] = result.counts.get(score.predicted_label, 0) + 1
    result.sources[MODEL] = len(records)
    result.records.extend(records)


def _stored_bytes(store, relative: str) -> bytes | None:
    """The stored image's bytes, or None when the store has no file there."""
    try:
        return store.read_bytes(relative)
    except (FileNotFoundError, IsADirectoryError):
        return None


def _write_items(session, store, work, result, folders, classes, include_unsure, after) -> None:
    records = []
    for folder in folders:
        (work / folder).mkdir()
    version = active_version(session)
    audited = set(audit.audit_set(session, version)) if version is not None else set()
    for image, given, cancels, versions, scores in _items(session, after, result.watermark):
        in_audit = image.id in audited
        folder, winner = _decide(given, cancels, classes, include_unsure, in_audit)
        data = _stored_bytes(store, image.path) if folder else None
        if folder and data is None:
            folder, winner = None, f"image file missing from the store ({image.path})"
        if folder is None:
            result.left_out.append((image.id, image.sha256, winner))
            continue
        write_file(work / folder / f"{image.sha256}.png", png_bytes(data))
        origin = AUDIT if in_audit else HUMAN
        records.append(record(image, given, winner, folder, versions, scores, source=origin))
        result.counts[winner] = result.counts.get(winner, 0) + 1
        result.sources[origin] = result.sources.get(origin, 0) + 1
    result.records = records


def finish_export(session: Session, result: ExportResult) -> ExportResult:
    """Add the `Export` row to ``session`` (a write transaction the caller commits), then
    rename the prepared folder to OUT. The row comes first: a database error leaves no OUT."""
    row = Export(
        path=str(result.path), item_count=result.item_count, label_watermark=result.watermark
    )
    session.add(row)
    session.flush()
    if locations.is_remote(result.path):
        remote_export.upload_manifests(result.work, result.path)
    else:
        swap_in(result.work, result.path, result.replace)
    result.export_id, result.work = row.id, None
    return result


def discard_export(result: ExportResult) -> None:
    """Remove a prepared export that will not be finished."""
    if result.work is not None:
        shutil.rmtree(result.work, ignore_errors=True)
        result.work = None
    if result.uploaded:
        remote_export.discard(result.path, result.uploaded)
        result.uploaded = []


def export_dataset(session: Session, store: FileStore, out: Path, **options) -> ExportResult:
    """`prepare_export` and `finish_export` in one session (the caller owns the transaction)."""
    result = prepare_export(session, store, out, **options)
    try:
        return finish_export(session, result)
    except BaseException:
        discard_export(result)
        raise
