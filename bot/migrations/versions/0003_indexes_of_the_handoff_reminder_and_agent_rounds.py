"""Indexes of the handoff topic lookup, the per-channel reminder round and the silent-agent
check (tests/bot/test_indexes.py found each of them scanning its table).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 20:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # if_not_exists: a database adopted from before migrations may have them from create_all.
    op.create_index("ix_handoff_chat", "handoff", ["channel", "chat_id", "number"], if_not_exists=True)
    op.create_index("ix_reminder_channel_due", "reminder", ["channel", "due_at"], if_not_exists=True)
    op.create_index(
        "ix_agent_watch",
        "agent",
        ["last_seen_at"],
        if_not_exists=True,
        sqlite_where=sa.text("online IS 1 AND revoked_at IS NULL"),
        postgresql_where=sa.text("online IS true AND revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_agent_watch", table_name="agent")
    op.drop_index("ix_reminder_channel_due", table_name="reminder")
    op.drop_index("ix_handoff_chat", table_name="handoff")
