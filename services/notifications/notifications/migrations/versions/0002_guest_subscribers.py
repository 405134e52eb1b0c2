"""guest subscribers: e-mail alerts without an account (double opt-in)

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 22:58:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "guest_subscribers",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guest_subscribers")),
        sa.UniqueConstraint("email", name=op.f("uq_guest_subscribers_email")),
    )
    op.create_table(
        "guest_confirmations",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("guest_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("subscription_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["guest_id"],
            ["guest_subscribers.id"],
            name=op.f("fk_guest_confirmations_guest_id_guest_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_guest_confirmations")),
    )
    with op.batch_alter_table("guest_confirmations", schema=None) as batch_op:
        batch_op.create_index("ix_guest_confirmations_created", ["created_at"], unique=False)
        batch_op.create_index(
            "ix_guest_confirmations_guest", ["guest_id", "created_at"], unique=False
        )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("language", sa.String(length=2), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("language")
    with op.batch_alter_table("guest_confirmations", schema=None) as batch_op:
        batch_op.drop_index("ix_guest_confirmations_guest")
        batch_op.drop_index("ix_guest_confirmations_created")
    op.drop_table("guest_confirmations")
    op.drop_table("guest_subscribers")
