"""new space criteria: stalls and logistics in saved searches (issue 18)

The criteria stay in `subscriptions.criteria` (JSON); the ones the matching query filters in SQL
are copied out, as the surface and rent ranges are: the kind of space searched (every existing
search is a workshop search), the logistics a unit must have (bits of `logistics_mask`) and the
logistics figures it must reach.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.add_column(
            sa.Column("space_kind", sa.String(10), nullable=False, server_default="workshop")
        )
        batch_op.add_column(
            sa.Column("logistics_mask", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("river_quay_within_m", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("min_freight_weight_t", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("min_freight_height_m", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.drop_column("min_freight_height_m")
        batch_op.drop_column("min_freight_weight_t")
        batch_op.drop_column("river_quay_within_m")
        batch_op.drop_column("logistics_mask")
        batch_op.drop_column("space_kind")
