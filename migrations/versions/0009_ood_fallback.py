"""the new OOD score: every scores row of a version that existed before it gets the fallback

The `ood` score changed kind (reviewer.ml.ood: a kNN distance and the entropy, each an
in-distribution p-value, combined by Fisher's method). No version written before has the new fit,
so from now on the worker scores their new images with the fallback, the entropy / log K. Their
stored rows are set to the same here, so one version's `ood` column never mixes two scales (the
old standardised Mahalanobis score, or NULL for a version registered without training data).
Retrain, or register again with --fit-data, for the fitted score. Downgrading leaves the values.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 17:00:00
"""

import json
import math
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    versions = sa.table("model_versions", sa.column("id"), sa.column("classes"))
    scores = sa.table(
        "scores", sa.column("model_version_id"), sa.column("entropy"), sa.column("ood")
    )
    for version_id, classes in bind.execute(sa.select(versions.c.id, versions.c.classes)):
        if isinstance(classes, str):  # a JSON column read without its type
            classes = json.loads(classes)
        share = 1.0 / math.log(max(len(classes or ()), 2))  # as reviewer.ml.ood.fallback_score
        bind.execute(
            scores.update()
            .where(scores.c.model_version_id == version_id)
            .values(ood=scores.c.entropy * share)
        )


def downgrade() -> None:
    pass  # the old scores cannot be recomputed here; the fallback values stay
