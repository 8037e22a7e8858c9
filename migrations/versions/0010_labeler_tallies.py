"""the dashboard's running tallies: labeler_answers, labeler_seconds, labeler_agreement

Per labeler: current labels per answer, timed labels per tenth of a second, and per version
the labels (``unsure`` left out) on items it scored and of those its prediction. The label
history and the score writes keep them in step from now on (reviewer.review.tallies); here they
are counted once from the history. ix_labels_labeled_at finds the last hour's labels.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CURRENT = (
    "SELECT l.image_id, l.user_id, l.label, l.seconds FROM labels l WHERE l.label IS NOT NULL "
    "AND NOT EXISTS (SELECT 1 FROM labels c WHERE c.undoes_label_id = l.id)"
)


def _backfill(bind) -> None:
    """The same counts as reviewer.review.tallies.rebuild, in the schema of this revision."""
    tenths = "seconds * 10 + 0.5"
    tenths = f"CAST({tenths if bind.dialect.name == 'sqlite' else f'floor({tenths})'} AS INTEGER)"
    statements = (
        "INSERT INTO labeler_answers (user_id, label, labels) "
        f"SELECT user_id, label, count(*) FROM ({CURRENT}) cur GROUP BY user_id, label",
        f"INSERT INTO labeler_seconds (user_id, tenths, labels) SELECT user_id, {tenths}, "
        f"count(*) FROM ({CURRENT}) cur WHERE seconds IS NOT NULL GROUP BY user_id, {tenths}",
        "INSERT INTO labeler_agreement (model_version_id, user_id, judged, matches) "
        "SELECT s.model_version_id, cur.user_id, count(*), "
        "sum(CASE WHEN s.predicted_label = cur.label THEN 1 ELSE 0 END) "
        f"FROM ({CURRENT}) cur JOIN scores s ON s.image_id = cur.image_id "
        "WHERE cur.label != 'unsure' GROUP BY s.model_version_id, cur.user_id",
    )
    for statement in statements:
        bind.execute(sa.text(statement))


def upgrade() -> None:
    op.create_table(
        "labeler_answers",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_labeler_answers_user_id_users", ondelete="CASCADE"
        ),  # noqa: E501
        sa.PrimaryKeyConstraint("user_id", "label", name="pk_labeler_answers"),
    )
    op.create_table(
        "labeler_seconds",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("tenths", sa.Integer(), nullable=False),
        sa.Column("labels", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_labeler_seconds_user_id_users", ondelete="CASCADE"
        ),  # noqa: E501
        sa.PrimaryKeyConstraint("user_id", "tenths", name="pk_labeler_seconds"),
    )
    op.create_table(
        "labeler_agreement",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("judged", sa.Integer(), nullable=False),
        sa.Column("matches", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name="fk_labeler_agreement_model_version_id_model_versions",
            ondelete="CASCADE",
        ),  # noqa: E501
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_labeler_agreement_user_id_users", ondelete="CASCADE"
        ),  # noqa: E501
        sa.PrimaryKeyConstraint("model_version_id", "user_id", name="pk_labeler_agreement"),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index("ix_labels_labeled_at", ["labeled_at"], unique=False)
    _backfill(op.get_bind())


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index("ix_labels_labeled_at")
    for table in ("labeler_agreement", "labeler_seconds", "labeler_answers"):
        op.drop_table(table)
