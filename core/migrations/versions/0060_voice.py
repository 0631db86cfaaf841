"""voice: calls, call legs, recordings (filled by the call-center work)

Revision ID: 0060
Revises: 0050
Create Date: 2026-12-01 21:00:00
"""
import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

revision = '0060'
down_revision = '0050'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
