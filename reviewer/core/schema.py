"""The data model: SQLAlchemy 2.0 typed ORM classes, nothing else.

This module owns the tables of docs/architecture.md's data model and the indexes the
queue needs (one per row of the strategy table). It holds no queries: the modules that read
and write take a session and build their own ``select()`` statements. The Alembic migrations
create exactly this schema; ``alembic check`` in the tests keeps the two in agreement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from reviewer.core import strategies
from reviewer.core.keys import (  # noqa: F401 (the schema's helpers, imported from here too)
    RANDOM_MODULUS,
    RANDOM_MULTIPLIER,
    as_utc,
    new_audit_key,
    random_key,
    utcnow,
)

# Stable constraint names so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _random_key_default(context) -> int:
    return random_key(context.get_current_parameters()["image_id"])


def _batchbald_key_default(context) -> float:
    return context.get_current_parameters()["mutual_info"]  # a new row is in no batch yet


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (Index("ix_images_label_count", "label_count", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    path: Mapped[str] = mapped_column(String(255))
    original_filename: Mapped[str] = mapped_column(Text)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    mode: Mapped[str | None] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(255))
    given_label: Mapped[str | None] = mapped_column(String(255), index=True)
    status: Mapped[str] = mapped_column(String(16), default="ok", index=True)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # Current (not undone) human labels, kept here so "needs review" is an indexed lookup.
    label_count: Mapped[int] = mapped_column(Integer, default=0)
    audit_key: Mapped[int] = mapped_column(BigInteger, default=new_audit_key)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_model_versions_name_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    classes: Mapped[list[str]] = mapped_column(JSON)
    input_spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    mc_samples: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    training_data_path: Mapped[str | None] = mapped_column(Text)
    training_data_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # sha256 of every image it and its ancestors trained on (None: not stated)
    trained_on: Mapped[list[str] | None] = mapped_column(JSON)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by `activate`: scored first, it takes over once every image has its scores.
    activate_when_scored: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Score(Base):
    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("image_id", "model_version_id", name="uq_scores_image_version"),
        *(
            Index(f"ix_scores_queue_{first}", "model_version_id", "needs_review", *keys, "image_id")
            for first, keys in strategies.queue_indexes().items()
        ),
        # The pool at a confidence threshold, the answered items by answer and entropy: the
        # certificate's and the dashboard's counts, read from the index alone.
        Index("ix_scores_pool", "model_version_id", "confidence", "human_label", "predicted_label"),
        Index(
            "ix_scores_answers",
            "model_version_id",
            "human_label",
            "entropy",
            "image_id",
            "predicted_label",
        ),  # fmt: skip
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE")
    )
    predicted_label: Mapped[str] = mapped_column(String(255))
    mean: Mapped[list[float]] = mapped_column(JSON)
    std: Mapped[list[float]] = mapped_column(JSON)
    entropy: Mapped[float] = mapped_column(Float)
    expected_entropy: Mapped[float] = mapped_column(Float)
    mutual_info: Mapped[float] = mapped_column(Float)
    variance: Mapped[float] = mapped_column(Float)
    variation_ratio: Mapped[float] = mapped_column(Float)
    margin: Mapped[float] = mapped_column(Float)
    confidence: Mapped[float | None] = mapped_column(Float)
    self_confidence: Mapped[float | None] = mapped_column(Float)
    normalized_margin: Mapped[float | None] = mapped_column(Float)
    ood: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer)
    random_key: Mapped[int] = mapped_column(BigInteger, default=_random_key_default)
    audit_key: Mapped[int | None] = mapped_column(BigInteger)  # the image's: an index walk
    batchbald_key: Mapped[float] = mapped_column(Float, default=_batchbald_key_default)
    # Mirrors images.label_count < labels-per-item, for the queue indexes.
    needs_review: Mapped[bool] = mapped_column(Boolean, default=True)
    # Mirrors the image's human answer, for the pool's figures in SQL: the consensus of its
    # current labels, "unsure" for a tie, None while nobody answered (review.labels).
    human_label: Mapped[str | None] = mapped_column(String(255))
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScoreLease(Base):
    __tablename__ = "score_leases"

    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    model_version_id: Mapped[int] = mapped_column(
        ForeignKey("model_versions.id", ondelete="CASCADE"), primary_key=True
    )
    worker_id: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Leases of this image for this version so far: one that expired without a result means a
    # worker died holding it; after a few, the image is failed (scoring.claims).
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


class ReviewLease(Base):
    __tablename__ = "review_leases"

    image_id: Mapped[int] = mapped_column(
        ForeignKey("images.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # The previous holder when this lease took over an expired one (for the stale tab's answer).
    taken_from_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    strategy: Mapped[str | None] = mapped_column(String(32))  # handed out by; NULL: by hand


class Label(Base):
    """One row of an item's append-only label history.

    A row with ``label`` NULL undoes ``undoes_label_id`` (``reason`` says
    whether the labeler undid it or an admin voided it). A row with ``restores_label_id``
    gives a voided label back for its labeler; ``restored_by_user_id`` is the admin who did.
    """

    __tablename__ = "labels"
    __table_args__ = (Index("ix_labels_image_id_id", "image_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    label: Mapped[str | None] = mapped_column(String(255))
    undoes_label_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(String(32))
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    labeled_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )  # indexed: the dashboard's last hour is a range of it
    seconds: Mapped[float | None] = mapped_column(Float)
    # The lease's, when it was given (indexed: the audit's labels apart from the queue's).
    strategy: Mapped[str | None] = mapped_column(String(32), index=True)
    restores_label_id: Mapped[int | None] = mapped_column(ForeignKey("labels.id"), unique=True)
    restored_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Skip(Base):
    __tablename__ = "skips"
    __table_args__ = (Index("ix_skips_user_image", "user_id", "image_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    skipped_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Setting(Base):
    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default="labeler")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkerHeartbeat(Base):
    __tablename__ = "worker_heartbeats"

    worker_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    model_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_versions.id", ondelete="SET NULL")
    )
    state: Mapped[str] = mapped_column(String(32), default="starting")
    images_scored: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Export(Base):
    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    path: Mapped[str] = mapped_column(Text)
    item_count: Mapped[int] = mapped_column(Integer)
    # The highest labels.id included: `export --since last` starts after it.
    label_watermark: Mapped[int] = mapped_column(Integer)


# Tables of their own modules, imported here so they are in Base.metadata wherever this is.
from reviewer.core.login_tables import LoginFailure, WebSession  # noqa: E402, F401
from reviewer.core.tally_tables import (  # noqa: E402, F401
    LabelerAgreement,
    LabelerAnswers,
    LabelerSeconds,
    ScoreBins,
)
