"""restoring voided labels: labels.restores_label_id and labels.restored_by_user_id

A restore appends a row that copies a voided label (a cancelled row stays cancelled): it
names the row it restores and the admin who restored it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("restores_label_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("restored_by_user_id", sa.Integer(), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_labels_restores_label_id"), ["restores_label_id"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_labels_restores_label_id_labels"),
            "labels",
            ["restores_label_id"],
            ["id"],
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_labels_restored_by_user_id_users"),
            "users",
            ["restored_by_user_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_labels_restored_by_user_id_users"), type_="foreignkey"
        )
        batch_op.drop_constraint(
            batch_op.f("fk_labels_restores_label_id_labels"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("uq_labels_restores_label_id"), type_="unique")
        batch_op.drop_column("restored_by_user_id")
        batch_op.drop_column("restores_label_id")
