"""the pool's figures in SQL: scores.human_label and the indexes that count the pool

scores.human_label mirrors the image's human answer (the consensus of its current labels,
"unsure" for a tie, NULL while nobody answered), kept in step by the label transactions, so
the audit's certificate and the dashboard count the pool from an index instead of reading
every row. ix_scores_pool counts it at a confidence threshold; ix_scores_answers groups the answered
items by answer and entropy; ix_images_label_count counts
the reviewed images; ix_labels_strategy finds the audit's labels.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 08:00:00
"""

from collections import Counter, defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
BATCH = 10_000
UNSURE = "unsure"


def _answer(given: list[str]) -> str:
    """The consensus of the labels, "unsure" for a tie (as review.labels.human_answer)."""
    counts = Counter(given).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return UNSURE
    return counts[0][0]


def _backfill(bind) -> None:
    labels = sa.table(
        "labels", sa.column("id"), sa.column("image_id"), sa.column("label"),
        sa.column("undoes_label_id"),
    )  # fmt: skip
    cancel = labels.alias("cancel")
    current = (
        sa.select(labels.c.image_id, labels.c.label)
        .where(labels.c.label.is_not(None))
        .where(~sa.exists().where(cancel.c.undoes_label_id == labels.c.id))
        .order_by(labels.c.id)
    )
    given: dict[int, list[str]] = defaultdict(list)
    for image_id, label in bind.execute(current):
        given[image_id].append(label)
    scores = sa.table("scores", sa.column("image_id"), sa.column("human_label"))
    stmt = sa.update(scores).where(scores.c.image_id == sa.bindparam("row_image_id"))
    stmt = stmt.values(human_label=sa.bindparam("value"))
    rows = [{"row_image_id": i, "value": _answer(labels)} for i, labels in given.items()]
    for start in range(0, len(rows), BATCH):
        bind.execute(stmt, rows[start : start + BATCH])


def upgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("human_label", sa.String(length=255), nullable=True))
    _backfill(op.get_bind())
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scores_pool",
            ["model_version_id", "confidence", "human_label", "predicted_label"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scores_answers",
            ["model_version_id", "human_label", "entropy", "image_id", "predicted_label"],
            unique=False,
        )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index("ix_images_label_count", ["label_count", "status"], unique=False)
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index("ix_labels_strategy", ["strategy"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index("ix_labels_strategy")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_label_count")
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_answers")
        batch_op.drop_index("ix_scores_pool")
        batch_op.drop_column("human_label")
