"""retention: each artisan's last activity, the inactivity warning, pseudonymised applications

artisan_profiles.last_active_at (backfilled from updated_at, the last change the artisan made
that the table recorded), inactivity_warned_at and inactivity_erasure_due_at (the retention
job's warning and the date it announced); applications.pseudonymised_at (the job replaced the
texts of an application not selected, past the retention period). docs/privacy.md, "The
register".

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from fabkit.db import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("artisan_profiles") as batch:
        batch.add_column(sa.Column("last_active_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("inactivity_warned_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("inactivity_erasure_due_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE artisan_profiles SET last_active_at = updated_at")
    with op.batch_alter_table("artisan_profiles") as batch:
        batch.alter_column("last_active_at", existing_type=UTCDateTime(), nullable=False)
        batch.create_index(
            batch.f("ix_artisan_profiles_last_active_at"), ["last_active_at"], unique=False
        )
    with op.batch_alter_table("applications") as batch:
        batch.add_column(sa.Column("pseudonymised_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("applications") as batch:
        batch.drop_column("pseudonymised_at")
    with op.batch_alter_table("artisan_profiles") as batch:
        batch.drop_index(batch.f("ix_artisan_profiles_last_active_at"))
        batch.drop_column("inactivity_erasure_due_at")
        batch.drop_column("inactivity_warned_at")
        batch.drop_column("last_active_at")
