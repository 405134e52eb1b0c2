"""account deletions: the identity provider's account of each erased artisan, until it is gone

account_deletions holds one row per erased artisan (the Keycloak user id, i.e. the subject of
its tokens), written in the erasure's transaction; the account deleter takes due rows, deletes
the user through the provider's admin API, and retries with backoff (attempts, next_attempt_at,
last_error: a type or status only, never a body) until deleted_at is set. Erasures done
before this revision get their row here.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from fabkit.db import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_deletions",
        sa.Column("artisan_id", sa.String(length=36), nullable=False),
        sa.Column("erasure_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("artisan_id", name=op.f("pk_account_deletions")),
    )
    op.create_index(
        "ix_account_deletions_due",
        "account_deletions",
        ["deleted_at", "next_attempt_at"],
    )
    # Erasures made before the deleter existed get their account deleted too.
    op.execute(
        "INSERT INTO account_deletions (artisan_id, erasure_id, created_at, attempts, "
        "next_attempt_at) SELECT subject_artisan_id, MIN(id), MIN(completed_at), 0, "
        "MIN(completed_at) FROM privacy_requests WHERE kind = 'erasure' AND completed_at "
        "IS NOT NULL GROUP BY subject_artisan_id"
    )


def downgrade() -> None:
    op.drop_index("ix_account_deletions_due", table_name="account_deletions")
    op.drop_table("account_deletions")
