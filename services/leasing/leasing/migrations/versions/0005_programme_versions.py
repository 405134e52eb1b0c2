"""programmes stored in the database, versioned and editable by officers

programme_versions keeps every programme catalogue published (its version, hash, whole body,
who changed it, when and why). programme_publications stays the head: the version in force,
locked by every change. The programme file seeds the first version at start-up (or stores the
body of the version already published from it); the database is the source afterwards.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:00:00
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
        "programme_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("config_hash", sa.String(length=64), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.CheckConstraint("version >= 1", name=op.f("ck_programme_versions_version_positive")),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_programme_versions")),
    )


def downgrade() -> None:
    op.drop_table("programme_versions")
