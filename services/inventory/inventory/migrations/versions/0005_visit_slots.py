"""visit slots: workshop visits published by a site or a tenant; units' tenant artisan

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 11:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tenant_artisan_id", sa.String(length=36), nullable=True))
    op.create_table(
        "visit_slots",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("site_id", sa.String(length=36), nullable=False),
        sa.Column("unit_id", sa.String(length=36), nullable=True),
        sa.Column("landlord_id", sa.String(length=36), nullable=False),
        sa.Column("arrondissement", sa.Integer(), nullable=False),
        sa.Column("host_kind", sa.String(length=10), nullable=False),
        sa.Column("host_artisan_id", sa.String(length=36), nullable=True),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("accessibility", sa.JSON(), nullable=False),
        sa.Column("accessibility_notes", sa.String(length=500), nullable=True),
        sa.Column("trades", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("cancel_reason", sa.String(length=500), nullable=True),
        sa.Column("demo", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "ends_at > starts_at", name=op.f("ck_visit_slots_visit_ends_after_start")
        ),
        sa.CheckConstraint(
            "capacity BETWEEN 1 AND 200", name=op.f("ck_visit_slots_visit_capacity_range")
        ),
        sa.CheckConstraint(
            "host_kind IN ('site', 'tenant')", name=op.f("ck_visit_slots_visit_host_kind")
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'cancelled')", name=op.f("ck_visit_slots_visit_status")
        ),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_visit_slots_site_id_sites")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_visit_slots_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visit_slots")),
    )
    op.create_index("ix_visit_slots_starts", "visit_slots", ["status", "starts_at"])
    op.create_index("ix_visit_slots_site", "visit_slots", ["site_id", "starts_at"])


def downgrade() -> None:
    op.drop_index("ix_visit_slots_site", table_name="visit_slots")
    op.drop_index("ix_visit_slots_starts", table_name="visit_slots")
    op.drop_table("visit_slots")
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.drop_column("tenant_artisan_id")
