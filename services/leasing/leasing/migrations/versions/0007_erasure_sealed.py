"""erasure sealed: when leasing appended the second record of an erasure on its artisan's key

privacy_requests.sealed_at: set when `leasing.artisan.erasure_sealed.v1` was written to the
outbox, once the topic's compaction lag had passed since the erasure (docs/privacy.md, "Kafka").

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 13:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from fabkit.db import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("privacy_requests") as batch:
        batch.add_column(sa.Column("sealed_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("privacy_requests") as batch:
        batch.drop_column("sealed_at")
