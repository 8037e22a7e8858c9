"""the random audit: audit keys, scores.confidence, how an item was handed out, trained_on

images.audit_key is each image's random place in the audit walk (fixed once, the same for every
version), copied to scores for the audit strategy's index; scores.confidence is the mean
probability of the predicted class, the auto-accept score; review_leases.strategy and
labels.strategy record how an item was handed out (a strategy, or "audit");
model_versions.trained_on lists the human-labeled images a version (and its ancestors) trained
on, so a version is never certified on its own training data.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 04:00:00
"""

import json
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
BATCH = 10_000


def _update_by_id(bind, table, column: str, rows: list[dict]) -> None:
    """SET column = :value WHERE id = :row_id, for every {"row_id", "value"} of ``rows``."""
    stmt = sa.update(table).where(table.c.id == sa.bindparam("row_id"))
    stmt = stmt.values({column: sa.bindparam("value")})
    for start in range(0, len(rows), BATCH):
        bind.execute(stmt, rows[start : start + BATCH])


def _backfill(bind) -> None:
    images = sa.table("images", sa.column("id"), sa.column("audit_key"))
    ids = [row[0] for row in bind.execute(sa.select(images.c.id))]
    keys = [{"row_id": i, "value": secrets.randbits(62)} for i in ids]
    _update_by_id(bind, images, "audit_key", keys)
    scores = sa.table("scores", sa.column("id"), sa.column("mean"), sa.column("confidence"))
    found = bind.execute(sa.select(scores.c.id, sa.cast(scores.c.mean, sa.Text))).all()
    confidence = [{"row_id": i, "value": max(json.loads(mean))} for i, mean in found]
    _update_by_id(bind, scores, "confidence", confidence)
    bind.execute(
        sa.text(
            "UPDATE scores SET audit_key = "
            "(SELECT audit_key FROM images WHERE images.id = scores.image_id)"
        )
    )


def upgrade() -> None:
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.add_column(sa.Column("audit_key", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confidence", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("audit_key", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("review_leases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("strategy", sa.String(length=32), nullable=True))
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trained_on", sa.JSON(), nullable=True))
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("strategy", sa.String(length=32), nullable=True))
    _backfill(op.get_bind())
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.alter_column("audit_key", existing_type=sa.BigInteger(), nullable=False)
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scores_queue_audit_key",
            ["model_version_id", "needs_review", "audit_key", "image_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_queue_audit_key")
        batch_op.drop_column("audit_key")
        batch_op.drop_column("confidence")
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_column("strategy")
    with op.batch_alter_table("review_leases", schema=None) as batch_op:
        batch_op.drop_column("strategy")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("trained_on")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_column("audit_key")
