"""new spaces: logistics attributes of sites (copied onto units), seasonal stalls

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIT_INDEXES = {
    "ix_units_space_kind": ["space_kind", "status"],
    "ix_units_rail_siding": ["rail_siding", "status"],
    "ix_units_river_quay": ["river_quay_distance_m"],
    "ix_units_petite_ceinture": ["petite_ceinture_station"],
    "ix_units_freight": ["freight_max_weight_t", "freight_max_height_m"],
    "ix_units_cargo_bike": ["cargo_bike_spaces"],
}


def _logistics_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("rail_siding", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("river_quay_distance_m", sa.Integer(), nullable=True),
        sa.Column("petite_ceinture_station", sa.String(length=100), nullable=True),
        sa.Column("freight_max_weight_t", sa.Float(), nullable=True),
        sa.Column("freight_max_height_m", sa.Float(), nullable=True),
        sa.Column("cargo_bike_spaces", sa.Integer(), server_default="0", nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("sites", schema=None) as batch_op:
        for column in _logistics_columns():
            batch_op.add_column(column)
    with op.batch_alter_table("units", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("space_kind", sa.String(length=20), server_default="workshop", nullable=False)
        )
        batch_op.add_column(sa.Column("period_start", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("period_end", sa.Date(), nullable=True))
        for column in _logistics_columns():
            batch_op.add_column(column)
        batch_op.create_check_constraint(
            "workshop_has_no_period",
            "space_kind = 'stall' OR (period_start IS NULL AND period_end IS NULL)",
        )
        for name, columns in UNIT_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade() -> None:
    with op.batch_alter_table("units", schema=None) as batch_op:
        for name in UNIT_INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_constraint(op.f("ck_units_workshop_has_no_period"), type_="check")
        for column in reversed(_logistics_columns()):
            batch_op.drop_column(column.name)
        batch_op.drop_column("period_end")
        batch_op.drop_column("period_start")
        batch_op.drop_column("space_kind")
    with op.batch_alter_table("sites", schema=None) as batch_op:
        for column in reversed(_logistics_columns()):
            batch_op.drop_column(column.name)
