"""webhook failing since: when a search's webhook began failing without a success since

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Null while the webhook works (or has not failed yet); the first failed attempt after a
    # success sets it, a delivered one clears it. Failing for `delivery_disable_after_failing_s`
    # disables the search.
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_failing_since", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("webhook_failing_since")
