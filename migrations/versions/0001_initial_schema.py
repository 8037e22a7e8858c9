"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-24 01:41:23.106897
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("label_watermark", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("original_filename", sa.Text(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=True),
        sa.Column("source", sa.String(length=255), nullable=True),
        sa.Column("given_label", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("label_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("sha256", name=op.f("uq_images_sha256")),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_images_given_label"), ["given_label"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_status"), ["status"], unique=False)

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("input_spec", sa.JSON(), nullable=False),
        sa.Column("mc_samples", sa.Integer(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("training_data_path", sa.Text(), nullable=True),
        sa.Column("training_data_fingerprint", sa.String(length=64), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("activate_when_scored", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("name", "version", name="uq_model_versions_name_version"),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_user_id"), ["user_id"], unique=False)

    op.create_table(
        "labels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("undoes_label_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("labeled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_labels_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_labels_model_version_id_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["undoes_label_id"], ["labels.id"], name=op.f("fk_labels_undoes_label_id_labels")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_labels_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("undoes_label_id", name=op.f("uq_labels_undoes_label_id")),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.create_index("ix_labels_image_id_id", ["image_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_labels_user_id"), ["user_id"], unique=False)

    op.create_table(
        "review_leases",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_review_leases_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_review_leases_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_review_leases")),
    )
    with op.batch_alter_table("review_leases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_leases_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_review_leases_user_id"), ["user_id"], unique=False)

    op.create_table(
        "score_leases",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"],
            ["images.id"],
            name=op.f("fk_score_leases_image_id_images"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_score_leases_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_id", "model_version_id", name=op.f("pk_score_leases")),
    )
    with op.batch_alter_table("score_leases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_score_leases_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("predicted_label", sa.String(length=255), nullable=False),
        sa.Column("mean", sa.JSON(), nullable=False),
        sa.Column("std", sa.JSON(), nullable=False),
        sa.Column("entropy", sa.Float(), nullable=False),
        sa.Column("expected_entropy", sa.Float(), nullable=False),
        sa.Column("mutual_info", sa.Float(), nullable=False),
        sa.Column("variance", sa.Float(), nullable=False),
        sa.Column("variation_ratio", sa.Float(), nullable=False),
        sa.Column("margin", sa.Float(), nullable=False),
        sa.Column("self_confidence", sa.Float(), nullable=True),
        sa.Column("normalized_margin", sa.Float(), nullable=True),
        sa.Column("ood", sa.Float(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_scores_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_scores_model_version_id_model_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
        sa.UniqueConstraint("image_id", "model_version_id", name="uq_scores_image_version"),
    )
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.create_index(
            "ix_scores_queue_entropy",
            ["model_version_id", "needs_review", "entropy", "image_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scores_queue_margin",
            ["model_version_id", "needs_review", "margin", "image_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scores_queue_mutual_info",
            ["model_version_id", "needs_review", "mutual_info", "image_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scores_queue_ood",
            ["model_version_id", "needs_review", "ood", "image_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scores_queue_self_confidence",
            ["model_version_id", "needs_review", "self_confidence", "image_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scores_queue_variance",
            ["model_version_id", "needs_review", "variance", "image_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_scores_queue_variation_ratio",
            ["model_version_id", "needs_review", "variation_ratio", "image_id"],
            unique=False,
        )

    op.create_table(
        "skips",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_skips_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_skips_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_skips")),
    )
    with op.batch_alter_table("skips", schema=None) as batch_op:
        batch_op.create_index("ix_skips_user_image", ["user_id", "image_id"], unique=False)

    op.create_table(
        "worker_heartbeats",
        sa.Column("worker_id", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("images_scored", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_worker_heartbeats_model_version_id_model_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("worker_id", name=op.f("pk_worker_heartbeats")),
    )


def downgrade() -> None:
    op.drop_table("worker_heartbeats")
    with op.batch_alter_table("skips", schema=None) as batch_op:
        batch_op.drop_index("ix_skips_user_image")

    op.drop_table("skips")
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_index("ix_scores_queue_variation_ratio")
        batch_op.drop_index("ix_scores_queue_variance")
        batch_op.drop_index("ix_scores_queue_self_confidence")
        batch_op.drop_index("ix_scores_queue_ood")
        batch_op.drop_index("ix_scores_queue_mutual_info")
        batch_op.drop_index("ix_scores_queue_margin")
        batch_op.drop_index("ix_scores_queue_entropy")

    op.drop_table("scores")
    with op.batch_alter_table("score_leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_score_leases_expires_at"))

    op.drop_table("score_leases")
    with op.batch_alter_table("review_leases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_leases_user_id"))
        batch_op.drop_index(batch_op.f("ix_review_leases_expires_at"))

    op.drop_table("review_leases")
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_labels_user_id"))
        batch_op.drop_index("ix_labels_image_id_id")

    op.drop_table("labels")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))

    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("settings")
    op.drop_table("model_versions")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_images_status"))
        batch_op.drop_index(batch_op.f("ix_images_given_label"))

    op.drop_table("images")
    op.drop_table("exports")
