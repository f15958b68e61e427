"""A partial index of the unsent outbox rows (the hot queries look at no others).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 18:04:35.719007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_UNSENT = "sent_at IS NULL AND failed IS NULL"


def upgrade() -> None:
    # if_not_exists: a database adopted from before migrations may have it from create_all.
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_unsent",
            ["channel", "chat_id", "id"],
            unique=False,
            if_not_exists=True,
            sqlite_where=sa.text(_UNSENT),
            postgresql_where=sa.text(_UNSENT),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_unsent")
