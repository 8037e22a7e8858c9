"""score_bins: each version's scores counted in fine bins of confidence, entropy and mutual
information, with the answered, wrong, judged and judged wrong rows of each bin

The score writes and the mirrored answers keep them in step from now on
(reviewer.review.score_bins); here they are counted once from the scores, in chunks.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHUNK = 50_000


def _backfill(bind) -> None:
    """The counts of reviewer.review.score_bins.rebuild, read in this revision's schema."""
    import json

    from reviewer.review import score_bins

    classes = {}
    for version_id, found in bind.execute(sa.text("SELECT id, classes FROM model_versions")):
        classes[version_id] = len(json.loads(found) if isinstance(found, str) else found)
    totals = score_bins.new_totals()
    rows = bind.execute(
        sa.text(
            "SELECT model_version_id, confidence, entropy, mutual_info, human_label, "
            "predicted_label FROM scores"
        ).execution_options(yield_per=CHUNK)
    )
    for chunk in rows.partitions(CHUNK):
        score_bins.count_chunk(totals, [score_bins.recounted(row) for row in chunk], classes)
    table = sa.table(
        "score_bins",
        *(sa.column(n) for n in ("model_version_id", "figure", "bin")),
        *(sa.column(n) for n in score_bins.COUNTS),
    )
    values = score_bins.as_rows(totals)
    for start in range(0, len(values), CHUNK):
        bind.execute(table.insert(), values[start : start + CHUNK])


def upgrade() -> None:
    op.create_table(
        "score_bins",
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("figure", sa.String(length=16), nullable=False),
        sa.Column("bin", sa.Integer(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in ("rows", "answered", "wrong", "judged", "judged_wrong")
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name="fk_score_bins_model_version_id_model_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_version_id", "figure", "bin", name="pk_score_bins"),
    )
    _backfill(op.get_bind())


def downgrade() -> None:
    op.drop_table("score_bins")
