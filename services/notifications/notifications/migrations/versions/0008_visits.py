"""visits: inventory's workshop visit slots (read model) and the bookings made here (issue 18)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "visit_slot_views",
        sa.Column("slot_id", sa.String(length=64), nullable=False),
        sa.Column("site_id", sa.String(length=64), nullable=False),
        sa.Column("site_name", sa.String(length=200), nullable=False),
        sa.Column("site_address", sa.String(length=300), nullable=False),
        sa.Column("postcode", sa.String(length=10), nullable=False),
        sa.Column("arrondissement", sa.Integer(), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("host_kind", sa.String(length=10), nullable=False),
        sa.Column("host_landlord_id", sa.String(length=64), nullable=True),
        sa.Column("host_artisan_id", sa.String(length=64), nullable=True),
        sa.Column("unit_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starts_at", _tz(), nullable=False),
        sa.Column("ends_at", _tz(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("accessibility", sa.JSON(), nullable=False),
        sa.Column("accessibility_notes", sa.Text(), nullable=True),
        sa.Column("trades", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("slot_id", name=op.f("pk_visit_slot_views")),
    )
    with op.batch_alter_table("visit_slot_views", schema=None) as batch_op:
        batch_op.create_index("ix_visit_slot_views_upcoming", ["status", "starts_at"], unique=False)
        batch_op.create_index(
            "ix_visit_slot_views_landlord", ["host_landlord_id", "starts_at"], unique=False
        )
        batch_op.create_index(
            "ix_visit_slot_views_artisan", ["host_artisan_id", "starts_at"], unique=False
        )
    op.create_table(
        "visit_bookings",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("slot_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("places", sa.Integer(), nullable=False),
        sa.Column("cancel_token_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("cancelled_at", _tz(), nullable=True),
        sa.Column("reminded_at", _tz(), nullable=True),
        sa.Column("slot_cancel_mailed_at", _tz(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_bookings")),
        sa.UniqueConstraint("cancel_token_hash", name=op.f("uq_visit_bookings_cancel_token_hash")),
    )
    with op.batch_alter_table("visit_bookings", schema=None) as batch_op:
        batch_op.create_index("ix_visit_bookings_slot", ["slot_id", "status"], unique=False)
        batch_op.create_index("ix_visit_bookings_email", ["email", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("visit_bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_bookings_email")
        batch_op.drop_index("ix_visit_bookings_slot")
    op.drop_table("visit_bookings")
    with op.batch_alter_table("visit_slot_views", schema=None) as batch_op:
        batch_op.drop_index("ix_visit_slot_views_artisan")
        batch_op.drop_index("ix_visit_slot_views_landlord")
        batch_op.drop_index("ix_visit_slot_views_upcoming")
    op.drop_table("visit_slot_views")
