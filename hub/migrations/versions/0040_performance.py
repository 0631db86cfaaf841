"""performance: indexes for the hot paths (filled by the performance work)

Revision ID: 0040
Revises: 0030
Create Date: 2026-11-25 16:00:00
"""
from alembic import op  # noqa: F401
import sqlalchemy as sa  # noqa: F401


revision = '0040'
down_revision = '0030'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
