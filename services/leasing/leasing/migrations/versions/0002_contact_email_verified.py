"""artisan_profiles.contact_email_verified: the identity provider verified the contact address

A profile written with the account's verified e-mail as its contact address says so; only such a
profile may take over a guest's e-mail alerts in notifications (the address was proved by the
account, not just typed). Existing profiles start unverified.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 00:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artisan_profiles") as batch:
        batch.add_column(
            sa.Column(
                "contact_email_verified", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("artisan_profiles") as batch:
        batch.drop_column("contact_email_verified")
