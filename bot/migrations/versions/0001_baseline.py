"""The tables as of issue 8 (what create_all made before migrations)

Revision ID: 0001
Revises:
Create Date: 2026-11-23 17:43:10.581156
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agent",
        sa.Column("id", AutoString(length=40), nullable=False),
        sa.Column("channel", AutoString(length=32), nullable=False),
        sa.Column("chat_id", AutoString(length=64), nullable=False),
        sa.Column("name", AutoString(length=100), nullable=False),
        sa.Column("public_key", AutoString(length=100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("status", AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_agent_chat_id"), ["chat_id"], unique=False)

    op.create_table(
        "button_payload",
        sa.Column("key", AutoString(length=40), nullable=False),
        sa.Column("payload", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "conversation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", AutoString(length=32), nullable=False),
        sa.Column("chat_id", AutoString(length=64), nullable=False),
        sa.Column("state", AutoString(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel", "chat_id", name="uq_conversation_chat"),
    )
    op.create_table(
        "pairing_code",
        sa.Column("digest", AutoString(length=64), nullable=False),
        sa.Column("channel", AutoString(length=32), nullable=False),
        sa.Column("chat_id", AutoString(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("pairing_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pairing_code_chat_id"), ["chat_id"], unique=False)

    op.create_table(
        "pairing_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("address", AutoString(length=64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("pairing_failure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pairing_failure_address"), ["address"], unique=False)
        batch_op.create_index(batch_op.f("ix_pairing_failure_at"), ["at"], unique=False)

    op.create_table(
        "event_key",
        sa.Column("key", AutoString(length=200), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
        ),
        sa.PrimaryKeyConstraint("key"),
    )
    with op.batch_alter_table("event_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_key_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_key_created_at"), ["created_at"], unique=False)

    op.create_table(
        "handoff",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("channel", AutoString(length=32), nullable=False),
        sa.Column("chat_id", AutoString(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("company", AutoString(), nullable=False),
        sa.Column("reason", AutoString(length=16), nullable=False),
        sa.Column("status", AutoString(length=16), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("staff_name", AutoString(), nullable=True),
        sa.Column("resolution", AutoString(), nullable=True),
        sa.Column("notes", AutoString(), nullable=False),
        sa.Column("transcript", AutoString(), nullable=True),
        sa.Column("topic", AutoString(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "number", name="uq_handoff_number"),
    )
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoff_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoff_opened_at"), ["opened_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoff_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_handoff_topic"), ["topic"], unique=True)

    op.create_table(
        "message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("direction", AutoString(length=3), nullable=False),
        sa.Column("text", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_conversation_id"), ["conversation_id"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("channel", AutoString(length=32), nullable=False),
        sa.Column("chat_id", AutoString(length=64), nullable=False),
        sa.Column("payload", AutoString(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("failed", AutoString(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_try_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_chat_id"), ["chat_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_sent_at"), ["sent_at"], unique=False)

    op.create_table(
        "reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("channel", AutoString(length=32), nullable=False),
        sa.Column("chat_id", AutoString(length=64), nullable=False),
        sa.Column("key", AutoString(length=200), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversation.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("conversation_id", "key", name="uq_reminder_key"),
    )
    with op.batch_alter_table("reminder", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reminder_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_reminder_due_at"), ["due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reminder", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reminder_due_at"))
        batch_op.drop_index(batch_op.f("ix_reminder_conversation_id"))

    op.drop_table("reminder")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_sent_at"))
        batch_op.drop_index(batch_op.f("ix_outbox_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_outbox_chat_id"))

    op.drop_table("outbox")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_conversation_id"))

    op.drop_table("message")
    with op.batch_alter_table("handoff", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_topic"))
        batch_op.drop_index(batch_op.f("ix_handoff_status"))
        batch_op.drop_index(batch_op.f("ix_handoff_opened_at"))
        batch_op.drop_index(batch_op.f("ix_handoff_conversation_id"))

    op.drop_table("handoff")
    with op.batch_alter_table("event_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_key_created_at"))
        batch_op.drop_index(batch_op.f("ix_event_key_conversation_id"))

    op.drop_table("event_key")
    with op.batch_alter_table("pairing_failure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pairing_failure_at"))
        batch_op.drop_index(batch_op.f("ix_pairing_failure_address"))

    op.drop_table("pairing_failure")
    with op.batch_alter_table("pairing_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pairing_code_chat_id"))

    op.drop_table("pairing_code")
    op.drop_table("conversation")
    op.drop_table("button_payload")
    with op.batch_alter_table("agent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_agent_chat_id"))

    op.drop_table("agent")
