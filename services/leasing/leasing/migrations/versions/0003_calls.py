"""calls for applications: calls, frozen rankings, drafts, out-of-rank reasons

A vacancy is let through a call (calls: one per vacancy, its dates, status and the catalogue
version it opened under); its ranking is frozen at closing (call_rankings: one row per submitted
application). applications.call_id ties an application to its call (null for applications made
before calls; a draft is just another status value), and application_decisions.ground keeps the
published out-of-rank ground of an offer or a rejection beside its free-text reason.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("vacancy_id", sa.String(length=36), nullable=False),
        sa.Column("unit_id", sa.String(length=36), nullable=False),
        sa.Column("landlord_id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("catalogue_version", sa.Integer(), nullable=False),
        sa.Column("ranking_frozen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("results_published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("appeals_close_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("closes_at > opens_at", name=op.f("ck_calls_closes_after_opening")),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["unit_listings.unit_id"], name=op.f("fk_calls_unit_id_unit_listings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
        sa.UniqueConstraint("vacancy_id", name=op.f("uq_calls_vacancy_id")),
    )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.create_index("ix_calls_status_closes", ["status", "closes_at"], unique=False)
        batch_op.create_index("ix_calls_status_opens", ["status", "opens_at"], unique=False)
        batch_op.create_index("ix_calls_unit", ["unit_id"], unique=False)
        batch_op.create_index("ix_calls_landlord", ["landlord_id"], unique=False)

    op.create_table(
        "call_rankings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("call_id", sa.String(length=36), nullable=False),
        sa.Column("application_id", sa.String(length=36), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("max_score", sa.Integer(), nullable=False),
        sa.Column("score_breakdown", sa.JSON(), nullable=False),
        sa.Column("programme_id", sa.String(length=60), nullable=False),
        sa.CheckConstraint("rank >= 1", name=op.f("ck_call_rankings_rank_positive")),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_call_rankings_call_id_calls")
        ),
        sa.ForeignKeyConstraint(
            ["application_id"],
            ["applications.id"],
            name=op.f("fk_call_rankings_application_id_applications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_rankings")),
        sa.UniqueConstraint("application_id", name=op.f("uq_call_rankings_application_id")),
        sa.UniqueConstraint("call_id", "rank", name="uq_call_rankings_call_rank"),
    )

    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("call_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_applications_call_id"), ["call_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_applications_call_id_calls"), "calls", ["call_id"], ["id"]
        )
    with op.batch_alter_table("application_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ground", sa.String(length=60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("application_decisions", schema=None) as batch_op:
        batch_op.drop_column("ground")
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_applications_call_id_calls"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_applications_call_id"))
        batch_op.drop_column("call_id")
    op.drop_table("call_rankings")
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_index("ix_calls_landlord")
        batch_op.drop_index("ix_calls_unit")
        batch_op.drop_index("ix_calls_status_opens")
        batch_op.drop_index("ix_calls_status_closes")
    op.drop_table("calls")
