"""scores.batchbald_key: the batchbald strategy's sort key

The worker writes BATCH_KEY_BASE - place for the items of a version's current BatchBALD
batch; every other row holds its mutual_info, so existing rows are backfilled with it and
the strategy falls back to BALD's order outside the batch.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("batchbald_key", sa.Float(), nullable=True))
    op.execute("UPDATE scores SET batchbald_key = mutual_info")
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.alter_column("batchbald_key", existing_type=sa.Float(), nullable=False)
        batch_op.create_index(
            "ix_scores_queue_batchbald_key",
            ["model_version_id", "needs_review", "batchbald_key", "image_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_queue_batchbald_key")
        batch_op.drop_column("batchbald_key")
