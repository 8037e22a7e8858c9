"""review_leases.taken_from_user_id: whose expired lease a labeler took over

When a lease expires and another labeler takes the item, the row remembers the previous
holder, so a label sent from the stale tab is refused with "your lease expired and the item
was taken" instead of a bare conflict.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 02:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("review_leases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("taken_from_user_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_review_leases_taken_from_user_id_users"),
            "users",
            ["taken_from_user_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("review_leases", schema=None) as batch_op:
        batch_op.drop_constraint(
            op.f("fk_review_leases_taken_from_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("taken_from_user_id")
