"""privacy: erasures, tombstones of erased artisans, the verified flag of the artisan copy

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("erasure_id", sa.String(length=64), primary_key=True),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("requested_by", sa.String(length=10), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_erasures_subject", "erasures", ["subject", "erased_at"])
    op.create_table(
        "erased_artisans",
        sa.Column("artisan_id", sa.String(length=64), primary_key=True),
        sa.Column("erasure_id", sa.String(length=64), nullable=False),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("artisans") as batch_op:
        batch_op.add_column(
            sa.Column(
                "contact_email_verified", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("artisans") as batch_op:
        batch_op.drop_column("contact_email_verified")
    op.drop_table("erased_artisans")
    op.drop_index("ix_erasures_subject", table_name="erasures")
    op.drop_table("erasures")
