"""Predictions and corrections.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

PK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "predictions",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(100), nullable=True),
        sa.Column("label", sa.String(8), nullable=False),
        sa.Column("labels", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("p_ux", sa.Float(), nullable=False),
        sa.Column("p_cx", sa.Float(), nullable=False),
        sa.Column("p_other", sa.Float(), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("text_sha256", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
    )
    op.create_index("ix_predictions_item_id", "predictions", ["item_id"])
    op.create_index("ix_predictions_occurred_at", "predictions", ["occurred_at"])
    op.create_index("ix_predictions_source", "predictions", ["source"])
    op.create_index("ix_predictions_model_version", "predictions", ["model_version"])
    op.create_table(
        "feedback",
        sa.Column("pk", PK, primary_key=True, autoincrement=True),
        sa.Column("prediction_pk", PK, sa.ForeignKey("predictions.pk"), nullable=False),
        sa.Column("item_id", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("label", sa.String(8), nullable=False),
        sa.Column("labels", sa.String(16), nullable=False),
        sa.Column("topic", sa.String(40), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
    )
    op.create_index("ix_feedback_item_id", "feedback", ["item_id"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("predictions")
