"""queue indexes for variation_ratio and random

The variation_ratio index gains entropy (its tie-breaker: the ratio takes only T+1
values, so ordering by it alone left a large sort). scores.random_key stores the
`random` strategy's seeded shuffle so that strategy walks an index instead of
sorting the pool; existing rows are backfilled with the same formula.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 02:29:50.888757
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("random_key", sa.BigInteger(), nullable=True))
    # schema.random_key(image_id), the formula queue.py used to compute at query time.
    op.execute("UPDATE scores SET random_key = (image_id * 2654435761) % 4294967296")
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.alter_column("random_key", existing_type=sa.BigInteger(), nullable=False)
        batch_op.drop_index(batch_op.f("ix_scores_queue_variation_ratio"))
        batch_op.create_index(
            "ix_scores_queue_variation_ratio",
            ["model_version_id", "needs_review", "variation_ratio", "entropy", "image_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scores_queue_random_key",
            ["model_version_id", "needs_review", "random_key", "image_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_queue_random_key")
        batch_op.drop_index("ix_scores_queue_variation_ratio")
        batch_op.create_index(
            batch_op.f("ix_scores_queue_variation_ratio"),
            ["model_version_id", "needs_review", "variation_ratio", "image_id"],
            unique=False,
        )
        batch_op.drop_column("random_key")
