"""bot: clarification picks, forms, bookings (filled by the bot work)

Revision ID: 0070
Revises: 0060
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0070'
down_revision = '0060'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bot_clarify_picks",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("conversation_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False, server_default=""),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("offered", sa.JSON(), nullable=False),
        sa.Column("picked_entry_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_bot_clarify_picks_conversation_id", "bot_clarify_picks", ["conversation_id"])
    op.create_index("ix_bot_clarify_picks_picked_entry_id", "bot_clarify_picks", ["picked_entry_id"])
    op.create_index("ix_bot_clarify_picks_created_at", "bot_clarify_picks", ["created_at"])


def downgrade() -> None:
    op.drop_table("bot_clarify_picks")
