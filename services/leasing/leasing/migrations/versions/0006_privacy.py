"""privacy: the audit log of data-protection requests and the erased mark of a profile

privacy_requests records every export and erasure (self or admin), with ids only.
artisan_profiles.erased_at marks a pseudonymised profile (its account gets 410 from then on);
the SIRET column keeps its unique constraint: an erased profile holds a placeholder that is no
SIRET (it starts with "X") and is unique per profile.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "privacy_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("subject_artisan_id", sa.String(length=36), nullable=False),
        sa.Column("requested_by", sa.String(length=10), nullable=False),
        sa.Column("requested_by_id", sa.String(length=120), nullable=False),
        sa.Column("request_reference", sa.String(length=120), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_requests")),
    )
    op.create_index(
        "ix_privacy_requests_subject",
        "privacy_requests",
        ["subject_artisan_id", "created_at"],
    )
    op.create_index("ix_privacy_requests_created", "privacy_requests", ["created_at"])
    with op.batch_alter_table("artisan_profiles") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("artisan_profiles") as batch:
        batch.drop_column("erased_at")
    op.drop_index("ix_privacy_requests_created", table_name="privacy_requests")
    op.drop_index("ix_privacy_requests_subject", table_name="privacy_requests")
    op.drop_table("privacy_requests")
