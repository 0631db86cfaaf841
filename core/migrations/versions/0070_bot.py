"""bot: clarification picks, forms, bookings (filled by the bot work)

Revision ID: 0070
Revises: 0060
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0070'
down_revision = '0060'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
